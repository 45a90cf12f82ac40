"""Saturation probe of the temporal attention and the frame LSTM of a checkpoint, on video 3 of a split.

Prints the node inputs' variation over time, the frame LSTM's gates and cell magnitude at frames 0/60/119, then
(for additive TAU) the magnitude of TAU2's context term, the fraction of saturated tanh units and the clip scores.

    python benchmarks/probe_saturation.py CHECKPOINT REGIONS_DIR ANNOTATIONS_DIR
"""
import sys, torch, numpy as np
import torch.nn.functional as F
from vrgv.annotations import load_annotations
from vrgv.training.checkpoint import load_checkpoint
from vrgv.training.data import load_region_folder
model, vocab = load_checkpoint(sys.argv[1])[:2]
a = load_annotations(sys.argv[3])[3]
vr = load_region_folder(sys.argv[2], [a.video_id], 120, 40)[a.video_id]
q = torch.from_numpy(vocab.encode_query(a.relation_strings()))
with torch.no_grad():
    emb = model.embed_regions(torch.from_numpy(vr.boxes_norm), torch.from_numpy(vr.features.astype(np.float32)))
    out = model._encode(emb.unsqueeze(0), q)
    a_s, a_o = out['alpha_s'], out['alpha_o']
    f_s, f_o = out['f_s'] + F.relu(model.w_os(a_o)), out['f_o'] + F.relu(model.w_so(a_s))
    node = model.node_norm(model.node(torch.cat([f_s, f_o], -1)))
    print('node: std over time / std over dims', (node.std(1).mean() / node.std(2).mean()).item())
    print('attended box var over time: ', (torch.einsum('rnm,nmk->rnk', a_s, torch.from_numpy(vr.boxes_norm))).std(1).mean().item())
    # run LSTM manually to get cell states
    lstm = model.lstm_frame; H = lstm.hidden_size
    h = torch.zeros(node.shape[0], H); c = torch.zeros_like(h); gates=[]
    for t in range(node.shape[1]):
        g = node[:, t] @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
        i, f, gg, o = g.chunk(4, -1); i, f, o, gg = i.sigmoid(), f.sigmoid(), o.sigmoid(), gg.tanh()
        c = f * c + i * gg; h = o * c.tanh(); gates.append((i.mean().item(), f.mean().item(), o.mean().item(), c.abs().mean().item(), (c.abs()>2).float().mean().item()))
    print('t=0,60,119 (i,f,o,|c|,sat):', gates[0], gates[60], gates[119])
with torch.no_grad():
    f_l1 = out['f_l1']; c = model.config
    f_clip = f_l1.reshape(f_l1.shape[0], c.num_clips, c.clip_len, -1)[:, :, -1]
    g_s, g_p, g_o = model._words(q)
    f_rel = model.context_norm(model.relation_context(torch.cat([g_s, g_p, g_o], -1)))
    a = model.tau_clip.inp(f_clip); b = model.tau_clip.ctx(f_rel)
    print('clip inp abs', a.abs().mean().item(), 'inp std over clips', a.std(1).mean().item(), 'ctx abs', b.abs().mean().item(), 'tanh sat', (torch.tanh(a + b.unsqueeze(1)).abs() > 0.99).float().mean().item())
    sc = model.tau_clip.out(torch.tanh(a + b.unsqueeze(1))).squeeze(-1); print('clip scores', sc[0])
