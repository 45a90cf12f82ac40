"""The vRGV model (paper §3): spatial attention with attention shifting, hierarchical temporal attention
and an LSTM decoder that reconstructs the relation, trained with the reconstruction loss only (eq. 11).

Inference uses two batch-vectorized entry points that the export turns into ONNX graphs:
``embed_regions`` (once per video) and ``attend`` (per batch of R query relations). Masking is arithmetic,
there is no data-dependent Python control flow; the variant switches are fixed by the config at build time.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vrgv.errors import ConfigError
from vrgv.training.config import ModelConfig
from vrgv.vocab import QUERY_LEN


#: ``attend`` floors each frame's spatial scores at (best - SCORE_RANGE): e^-60 keeps every α and every α x
#: feature product a normal float32. Subnormals cost ~100x per operation on x86, and the change to α is < 1e-26.
SCORE_RANGE = 60.0


class AdditiveAttention(nn.Module):
    """``score = w · tanh(W_in x + W_ctx c + b)``, the attention form of eqs. 3, 7 and 10."""

    def __init__(self, in_dim: int, ctx_dim: int, att_dim: int) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, att_dim)
        self.ctx = nn.Linear(ctx_dim, att_dim, bias=False)
        self.out = nn.Linear(att_dim, 1, bias=False)

    def forward(self, x: Tensor, ctx: Tensor) -> Tensor:
        """x [R,K,in], ctx [R,ctx] -> softmax weights [R,K]."""
        scores = self.out(torch.tanh(self.inp(x) + self.ctx(ctx).unsqueeze(1))).squeeze(-1)
        return torch.softmax(scores, dim=-1)


class DotAttention(nn.Module):
    """``score = (W_in x) · (W_ctx c) / sqrt(A)``: the TAU form with ``temporal_scoring="dot"``. Without a tanh it
    cannot saturate, so a temporal attention that starts uniform keeps a gradient."""

    def __init__(self, in_dim: int, ctx_dim: int, att_dim: int) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, att_dim)
        self.ctx = nn.Linear(ctx_dim, att_dim, bias=False)
        self.scale = float(att_dim) ** -0.5

    def forward(self, x: Tensor, ctx: Tensor) -> Tensor:
        """x [R,K,in], ctx [R,ctx] -> softmax weights [R,K]."""
        scores = torch.matmul(self.inp(x), self.ctx(ctx).unsqueeze(-1)).squeeze(-1) * self.scale
        return torch.softmax(scores, dim=-1)


class TemporalHead(nn.Module):
    """Per-frame predicate classifier on the attended pair's geometry (``pair_geometry_features``): an ensemble of
    K two-layer MLPs fitted after training by top-k multiple-instance learning (:mod:`vrgv.training.temporal_head`),
    whose firing probabilities are averaged (one fit varies a lot with its seed). At inference it scores only the
    query's predicate, found by matching the query's predicate tokens against ``predicate_tokens``."""

    def __init__(self, hidden: int, num_predicates: int, members: int, input_dim: int = 27) -> None:
        super().__init__()
        K, F_, P = members, input_dim, num_predicates
        self.w1 = nn.Parameter(torch.zeros(K, F_, hidden))
        self.b1 = nn.Parameter(torch.zeros(K, 1, hidden))
        self.w2 = nn.Parameter(torch.zeros(K, hidden, hidden))
        self.b2 = nn.Parameter(torch.zeros(K, 1, hidden))
        self.w_out = nn.Parameter(torch.zeros(K, P, hidden))
        self.b_out = nn.Parameter(torch.zeros(K, P))
        self.register_buffer("mean", torch.zeros(F_))  # geometry normalisation, set by the fit
        self.register_buffer("std", torch.ones(F_))
        self.register_buffer("predicate_tokens", torch.zeros(P, QUERY_LEN - 2, dtype=torch.int64))

    @property
    def members(self) -> int:
        return self.w1.shape[0]

    def _hidden(self, geometry: Tensor) -> Tensor:
        """geometry [B,N,27] -> every member's last hidden layer [K,B,N,h] (one batched MatMul per layer)."""
        x = ((geometry - self.mean) / self.std).unsqueeze(0)  # [1,B,N,F]
        h = F.relu(torch.matmul(x, self.w1.unsqueeze(1)) + self.b1.unsqueeze(1))
        return F.relu(torch.matmul(h, self.w2.unsqueeze(1)) + self.b2.unsqueeze(1))

    def scores(self, geometry: Tensor) -> Tensor:
        """geometry [B,N,27] -> every member's logits of every predicate [K,B,N,P] (what the fit trains)."""
        return torch.matmul(self._hidden(geometry), self.w_out.transpose(1, 2).unsqueeze(1)) + self.b_out[:, None, None]

    def firing(self, geometry: Tensor, predicate_ids: Tensor, smooth: int) -> Tensor:
        """Mean over members of σ(logit of the query's predicate) per frame, box-filtered over ``smooth`` frames and
        divided by its maximum: geometry [R,N,F], predicate token ids [R,3] -> [R,N] in [0, 1]. A predicate the
        head does not know matches no row and gives the flat curve σ(0) (every frame)."""
        return self.firing_and_score(geometry, predicate_ids, smooth, 1)[0]

    def firing_and_score(self, geometry: Tensor, predicate_ids: Tensor, smooth: int, k: int) -> tuple[Tensor, Tensor]:
        """``firing`` [R,N] and the log of the bag score the fit trained [R]: the mean of the ``k`` highest smoothed
        probabilities (what decides which of two boxes is the subject of a same-category query)."""
        same = (predicate_ids.unsqueeze(1) == self.predicate_tokens.unsqueeze(0)).to(geometry.dtype)  # [R,P,3]
        match = (same.sum(-1) == float(same.shape[-1])).to(geometry.dtype)  # [R,P] (ReduceSum: opset-17 friendly)
        weight = torch.matmul(match, self.w_out)  # [K,R,h]: each member's output row of the query's predicate
        bias = torch.matmul(self.b_out, match.t()).unsqueeze(-1)  # [K,R,1]
        logits = torch.matmul(self._hidden(geometry), weight.unsqueeze(-1)).squeeze(-1) + bias  # [K,R,N]
        # log of the members' mean probability, then scaled so the peak frame is 1 before smoothing: smoothing is
        # linear, so the curve is the same, but a predicate that fires nowhere (probabilities ~1e-20) does not
        # divide rounding noise by a tiny peak
        # log σ(x) = min(x, 0) - log(1 + e^-|x|), written out: an exported Log(Sigmoid(x)) underflows to -inf
        log_sig = torch.minimum(logits, torch.zeros_like(logits)) - torch.log(1.0 + torch.exp(-logits.abs()))  # [K,R,N]
        top = log_sig.amax(0)
        log_fire = torch.log(torch.exp(log_sig - top).sum(0)) + top  # [R,N], + log K
        fire = torch.exp(log_fire - log_fire.amax(-1, keepdim=True))
        # mean over the frames inside the video (the window shrinks at its ends, so they are not pulled down)
        smoothed = F.avg_pool1d(fire.unsqueeze(1), smooth, stride=1, padding=smooth // 2,
                                count_include_pad=False).squeeze(1)
        peak = smoothed.amax(-1, keepdim=True)
        log_score = torch.log(smoothed.topk(k, dim=-1).values.mean(-1)) + log_fire.amax(-1)  # [R]
        return smoothed / peak, log_score


class VRGVModel(nn.Module):
    """Weakly supervised visual relation grounding by reconstruction (Xiao et al., ECCV 2020)."""

    def __init__(self, config: ModelConfig, word_vectors: np.ndarray | None = None) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise ConfigError(f"VRGVModel needs a ModelConfig, got {type(config).__name__}")
        self.config = c = config
        E, A, H = c.region_dim, c.attention_dim, c.hidden_dim
        # word vectors: a frozen table inside the model so the exported graph takes token ids
        self.word_table = nn.Embedding(c.vocab_size, c.word_dim, padding_idx=0)
        self.word_table.weight.requires_grad_(False)
        # query columns of the subject and object ids, and their offsets into the [subject; object] tables:
        # buffers (not in the state dict) so a query allocates nothing on the host (CUDA graph capture needs that)
        self.register_buffer("so_cols", torch.tensor([0, QUERY_LEN - 1]), persistent=False)
        self.register_buffer("so_offsets", torch.tensor([0, c.vocab_size]), persistent=False)
        if word_vectors is not None:
            wv = np.asarray(word_vectors, dtype=np.float32)
            if wv.shape != (c.vocab_size, c.word_dim):
                raise ConfigError(
                    f"word vectors have shape {list(wv.shape)}, the config expects [{c.vocab_size}, {c.word_dim}]; "
                    f"build the table for this vocabulary"
                )
            with torch.no_grad():
                self.word_table.weight.copy_(torch.from_numpy(wv))
        self.word = nn.Linear(c.word_dim, E)  # g(w) = ReLU(W_word v(w))
        # region feature f(B) = ReLU(W_app f_app) + ReLU(W_box f_B)
        self.app = nn.Linear(c.feature_dim, E)
        self.box = nn.Linear(5, E)
        self.app_norm = nn.LayerNorm(E) if c.region_norm else nn.Identity()
        self.box_norm = nn.LayerNorm(E) if c.region_norm else nn.Identity()
        # spatial attention units (eqs. 3-4), one for the subject and one for the object
        self.sau_region = nn.Linear(E, 2 * A)
        self.sau_word_s = nn.Linear(E, A, bias=False)
        self.sau_word_o = nn.Linear(E, A, bias=False)
        if c.spatial_scoring == "additive":
            self.sau_out_s = nn.Linear(A, 1, bias=False)
            self.sau_out_o = nn.Linear(A, 1, bias=False)
            with torch.no_grad():
                for layer in (self.sau_out_s, self.sau_out_o):
                    layer.weight.mul_(float(c.attention_init_scale))
        # attention shifting (eqs. 5-6) and node input f_i = W3 [f_s, f_o] + b3
        if c.message_passing:
            self.w_so = nn.Linear(c.num_regions, E)
            self.w_os = nn.Linear(c.num_regions, E)
        self.node = nn.Linear(2 * E, E)
        if c.pair_geometry:
            self.geometry = nn.Linear(15, E)
        self.node_norm = nn.LayerNorm(E) if c.node_norm else nn.Identity()
        # hierarchical temporal attention (eqs. 7-10)
        self.lstm_frame = nn.LSTM(E, H, batch_first=True)
        if c.frame_skip:
            self.frame_skip = nn.Linear(E, H)
        n_ctx = 3 if (c.uses_predicate and c.relation_context_predicate) else 2
        self.relation_context = nn.Linear(n_ctx * E, H)
        self.context_norm = nn.LayerNorm(H) if c.context_norm else nn.Identity()
        tau = DotAttention if c.temporal_scoring == "dot" else AdditiveAttention
        if c.clip_attention:
            self.tau_clip = tau(H, H, A)
            self.lstm_clip = nn.LSTM(H, H, batch_first=True)
        if c.temporal_attention:
            self.tau_frame = tau(H, H, A)
        # decoder (eq. 11)
        self.dec_init = nn.Linear(H, H)
        self.decoder = nn.LSTM(E + H, H, batch_first=True)
        self.dec_out = nn.Linear(H, c.vocab_size)
        if c.word_aux_weight > 0:  # training-only head: which word does each frame's attended feature show?
            self.word_aux = nn.Linear(E, c.vocab_size)
        if c.temporal_aux_weight > 0 and c.uses_predicate:  # training-only head: predicate words per frame
            self.predicate_aux = nn.Linear(H, c.vocab_size)
        if c.temporal_mil_weight > 0 and c.uses_predicate:  # training-only head: which predicates each frame shows
            if c.temporal_mil_input == "geometry":
                self.predicate_mil = nn.Sequential(nn.Linear(GEOMETRY_DIM, H), nn.ReLU(), nn.Linear(H, c.num_predicates))
            else:
                self.predicate_mil = nn.Linear(2 * E, c.num_predicates)
        if c.region_mil_weight > 0:  # training-only head: which object category each region shows
            self.region_cls = nn.Linear(E, c.num_objects)
        if c.temporal_head:  # its own random draw: adding the head leaves the rest of training unchanged
            with torch.random.fork_rng(devices=[]):
                self.temporal_head = TemporalHead(c.temporal_head_hidden, c.num_predicates, c.temporal_head_members,
                                                  RELATIVE_DIM if c.temporal_head_features == "relative" else GEOMETRY_DIM)
        self.drop = nn.Dropout(c.dropout)

    # ------------------------------------------------------------------------------------------
    # inference entry points (exported)
    # ------------------------------------------------------------------------------------------
    def embed_regions(self, boxes_norm: Tensor, features: Tensor) -> Tensor:
        """f(B) for every region: boxes_norm [..., M, 5], features [..., M, D] -> [..., M, E] (with
        ``pair_geometry`` or ``temporal_head`` the normalised box rides along: [..., M, E + 5])."""
        if self.config.pair_geometry or self.config.temporal_head:
            return torch.cat([self._embed(boxes_norm, features), boxes_norm], dim=-1)
        return self._embed(boxes_norm, features)

    def _embed(self, boxes_norm: Tensor, features: Tensor) -> Tensor:
        # 2-D addmm so that the graph gets one Gemm per branch with its bias and ReLU fused
        lead = features.shape[:-1]
        app = F.relu(torch.addmm(self.app.bias, features.reshape(-1, features.shape[-1]), self.app.weight.t()))
        box = F.relu(torch.addmm(self.box.bias, boxes_norm.reshape(-1, boxes_norm.shape[-1]), self.box.weight.t()))
        return self.app_norm(app).reshape(*lead, -1) + self.box_norm(box).reshape(*lead, -1)  # Add writes [..., M, E]

    def attend(self, region_emb: Tensor, query_ids: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One video's region_emb [N,M,E] and R queries [R,5] -> α_s, α_o [R,N,M], β1 [R,N], β2 [R,H].

        The same function as ``_encode`` (tests check it), laid out time-major: every per-frame tensor is
        [N,R,...], the layout of the frame LSTM, so neither the graph nor eager PyTorch transposes the
        [R,N,E] activations, and α is pooled by a plain batched MatMul. Configs it does not cover (additive
        spatial scoring, pair geometry) take ``_encode``."""
        c = self.config
        if c.spatial_scoring != "dot" or c.pair_geometry:
            out = self._encode(region_emb.unsqueeze(0), query_ids)
            box = region_emb[..., c.region_dim:] if c.temporal_head else None
            return self._finish_attend(out["alpha_s"], out["alpha_o"], out["beta1"], out["beta2"], box, query_ids)
        region_box = None
        if c.temporal_head:
            region_emb, region_box = region_emb[..., : c.region_dim], region_emb[..., c.region_dim:]
        N, M, E = region_emb.shape
        R = query_ids.shape[0]
        q, f_rel = self._queries(query_ids)  # [R,2,E] (subject, object), [R,H]
        flat = region_emb.reshape(N * M, E)
        # Subject and object queries interleaved, [2R,E]: row 2r is relation r's subject, 2r+1 its object. One
        # pass over the regions then scores and pools both, and the pooled [N,R,2,E] is already W3's input
        # [f_s, f_o] per (frame, relation).
        scores = torch.matmul(flat, q.reshape(2 * R, E).t()).reshape(N, M, 2 * R).transpose(1, 2)  # [N,2R,M]
        # Scores more than SCORE_RANGE below their frame's best give α < 1e-26 instead of subnormal floats, which
        # slowed the products with α ~5x on real videos (encoder.md, session 7).
        scores = torch.maximum(scores, scores.amax(-1, keepdim=True) - SCORE_RANGE)
        alpha = torch.softmax(scores, dim=-1)  # [N,2R,M]
        pair = torch.matmul(alpha, region_emb).reshape(N * R, 2 * E)  # Σ_m α f(B): [f_s, f_o]
        if c.message_passing:  # f_s += ReLU(W_os α_o), f_o += ReLU(W_so α_s)
            a_so = alpha.reshape(N * R, 2, M)
            msg_s = F.relu(torch.addmm(self.w_os.bias, a_so[:, 1], self.w_os.weight.t()))
            msg_o = F.relu(torch.addmm(self.w_so.bias, a_so[:, 0], self.w_so.weight.t()))
            pair = pair + torch.cat([msg_s, msg_o], dim=-1)
        node = self.node_norm(torch.addmm(self.node.bias, pair, self.node.weight.t()))  # W3 [f_s, f_o] + b3
        f_l1 = _lstm_time_major(self.lstm_frame, node.reshape(N, R, E))  # [N,R,H]
        if c.frame_skip:
            f_l1 = f_l1 + torch.addmm(self.frame_skip.bias, node, self.frame_skip.weight.t()).reshape(N, R, -1)
        Hd = f_l1.shape[-1]
        if c.clip_attention:
            f_clip = f_l1.reshape(c.num_clips, c.clip_len, R, Hd)[:, -1]  # [H_clips,R,Hd], time-major
            beta2 = _temporal_attention_time_major(self.tau_clip, f_clip, f_rel)  # [R,H_clips]
            frame_ctx = _lstm_time_major(self.lstm_clip, beta2.t().unsqueeze(-1) * f_clip)[-1]  # [R,Hd]
        else:
            frame_ctx = f_rel
            beta2 = f_rel.new_zeros(R, c.num_clips)
        if c.temporal_attention:
            beta1 = _temporal_attention_time_major(self.tau_frame, f_l1, frame_ctx)
        else:
            beta1 = f_rel.new_ones(R, N) / float(N)
            beta2 = f_rel.new_ones(R, c.num_clips) / float(c.num_clips)
        alpha_so = alpha.reshape(N, R, 2, M).permute(2, 1, 0, 3)  # [2,R,N,M]
        if region_box is not None and not c.distinct_same_category:  # the head's curve replaces the attention
            boxes = torch.matmul(alpha, region_box).reshape(N, R, 2, -1).permute(2, 1, 0, 3)  # [2,R,N,5]
            beta1, beta2 = self.head_betas(boxes[0], boxes[1], query_ids)[:2]
            return alpha_so[0], alpha_so[1], beta1, beta2
        return self._finish_attend(alpha_so[0], alpha_so[1], beta1, beta2, region_box, query_ids)

    def _finish_attend(self, alpha_s: Tensor, alpha_o: Tensor, beta1: Tensor, beta2: Tensor,
                       region_box: Tensor | None, query_ids: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``attend``'s last step: with ``distinct_same_category`` the object's α [R,N,M] of a same-category query
        leaves the subject's box; with a temporal head [region_box N,M,5] β is the head's curve, and a
        same-category query's roles take the order the head scores higher."""
        same = None
        if self.config.distinct_same_category:
            same = query_ids[:, 0] == query_ids[:, QUERY_LEN - 1]  # [R]
            alpha_o = torch.where(same[:, None, None], distinct_attention(alpha_o, alpha_s), alpha_o)
        if region_box is not None:
            box_s = torch.matmul(alpha_s.transpose(0, 1), region_box).transpose(0, 1)  # [R,N,5]
            box_o = torch.matmul(alpha_o.transpose(0, 1), region_box).transpose(0, 1)
            beta1, beta2, swap = self.head_betas(box_s, box_o, query_ids, same)
            if swap is not None:
                alpha_s, alpha_o = (torch.where(swap[:, None, None], alpha_o, alpha_s),
                                    torch.where(swap[:, None, None], alpha_s, alpha_o))
        return alpha_s, alpha_o, beta1, beta2

    def head_features(self, box_s: Tensor, box_o: Tensor) -> Tensor:
        """What the temporal head sees per frame of α-pooled boxes [B,N,5] (``temporal_head_features``)."""
        if self.config.temporal_head_features == "relative":
            return pair_relative_features(box_s, box_o)
        return pair_geometry_features(box_s, box_o)

    def head_betas(self, box_s: Tensor, box_o: Tensor, query_ids: Tensor,
                   same: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """``attend``'s β with ``temporal_head``: the head's curve for the query's predicate on the α-pooled
        boxes [R,N,5] as β1 [R,N], zeros as β2 [R,H] (so β = β1 and σ thresholds a fraction of its peak). With
        ``same`` [R] bool, also the rows whose object box the head scores higher as the subject (swap [R])."""
        c = self.config
        head, pred = self.temporal_head, query_ids[:, 1:QUERY_LEN - 1]
        k = max(1, int(round(float(c.temporal_head_topk) * c.num_frames)))  # static: the graph has N frames
        beta1, score = head.firing_and_score(self.head_features(box_s, box_o), pred, c.temporal_head_smooth, k)
        swap = None
        if same is not None:
            beta_rev, score_rev = head.firing_and_score(self.head_features(box_o, box_s), pred, c.temporal_head_smooth, k)
            swap = same & (score_rev > score)
            beta1 = torch.where(swap[:, None], beta_rev, beta1)
        return beta1, beta1.new_zeros(beta1.shape[0], c.num_clips), swap

    # ------------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------------
    def forward(
        self, boxes_norm: Tensor, features: Tensor, video_index: Tensor, query_ids: Tensor, targets: Tensor,
        predicate_labels: Tensor | None = None, predicate_index: Tensor | None = None,
        object_labels: Tensor | None = None, pair_index: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Training forward over B (video, relation) samples with teacher forcing.

        boxes_norm [V,N,M,5], features [V,N,M,D] for V distinct videos; video_index i64 [B] picks each
        sample's video; query_ids i64 [B,5]; targets i64 [B,T] (``encode_words``, 0-padded).
        Returns the encoder outputs plus ``logits`` [B,T,vocab] and the summed-per-sample ``loss``. With
        ``temporal_mil_weight`` it also needs predicate_labels f32 [B,P] and predicate_index i64 [B]
        (``vrgv.training.data.predicate_targets``: video-level labels only); with ``region_mil_weight``,
        object_labels f32 [V,C] and pair_index i64 [B,2] (``object_targets``).
        """
        region_emb = self.embed_regions(boxes_norm, features)
        out = self._encode(region_emb, query_ids, video_index)
        logits = self._decode(out["featv"], targets)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0,
                               reduction="sum") / targets.shape[0]
        out.update(logits=logits, reconstruction_loss=loss)
        if self.config.word_aux_weight > 0:
            out["word_aux_loss"] = self._word_aux_loss(out["f_s"], out["f_o"], query_ids)
            loss = loss + self.config.word_aux_weight * out["word_aux_loss"]
        if self.config.temporal_aux_weight > 0 and self.config.uses_predicate:
            out["temporal_aux_loss"] = self._temporal_aux_loss(out["f_l1"], out["pool"], query_ids)
            loss = loss + self.config.temporal_aux_weight * out["temporal_aux_loss"]
        if self.config.clip_entropy_weight > 0 and self.config.clip_attention and self.config.temporal_attention:
            beta2 = out["beta2"]
            out["clip_entropy"] = -(beta2 * torch.log(beta2.clamp(min=1e-12))).sum(-1).mean()
            loss = loss + self.config.clip_entropy_weight * out["clip_entropy"]
        if self.config.temporal_mil_weight > 0 and self.config.uses_predicate:
            if predicate_labels is None or predicate_index is None:
                raise ConfigError("temporal_mil_weight > 0: forward needs predicate_labels and predicate_index "
                                  "(make_batch(..., labels=video_labels(samples)))")
            if self.config.temporal_mil_input == "geometry":
                frame_input = pair_geometry_features(
                    _pool_regions(out["alpha_s"], boxes_norm, video_index),
                    _pool_regions(out["alpha_o"], boxes_norm, video_index))
            else:
                after = torch.cat([out["node"][:, 1:], out["node"][:, -1:]], dim=1)
                before = torch.cat([out["node"][:, :1], out["node"][:, :-1]], dim=1)
                frame_input = torch.cat([out["node"], after - before], dim=-1)
            out["temporal_mil_loss"] = self._temporal_mil_loss(frame_input, out, predicate_labels, predicate_index)
            loss = loss + self.config.temporal_mil_weight * out["temporal_mil_loss"]
        if self.config.region_mil_weight > 0:
            if object_labels is None or pair_index is None:
                raise ConfigError("region_mil_weight > 0: forward needs object_labels and pair_index "
                                  "(make_batch(..., labels=video_labels(samples)))")
            out["region_mil_loss"] = self._region_mil_loss(region_emb[..., : self.config.region_dim], video_index,
                                                           out["alpha_s"], out["alpha_o"], object_labels, pair_index)
            loss = loss + self.config.region_mil_weight * out["region_mil_loss"]
        out["loss"] = loss
        return out

    def _region_mil_loss(self, region_emb: Tensor, video_index: Tensor, alpha_s: Tensor, alpha_o: Tensor,
                         labels: Tensor, pair: Tensor) -> Tensor:
        """Weakly supervised detection: a region classifier s_c(region); its max over each video's regions is
        trained with binary cross-entropy against the categories the video's labels name (every other category
        must not fire anywhere, so background regions, present in every video, learn to score low). Attention
        term: -log Σ_m α[r,n,m] σ(s_c(n,m)) for the query's subject (object) category c, classifier detached,
        averaged over frames: the spatial attention moves to regions that look like the named category."""
        scores = self.region_cls(region_emb)  # [V,N,M,C]
        bag = F.binary_cross_entropy_with_logits(scores.amax(dim=(1, 2)), labels, reduction="none").sum(-1).mean()
        probs = torch.sigmoid(scores.detach())[video_index]  # [B,N,M,C]
        terms = []
        for alpha, cat in ((alpha_s, pair[:, 0]), (alpha_o, pair[:, 1])):
            p = probs.gather(3, cat[:, None, None, None].expand(-1, probs.shape[1], probs.shape[2], 1)).squeeze(-1)
            terms.append(-torch.log((alpha * p).sum(-1).clamp(min=1e-6)).mean())
        return bag + terms[0] + terms[1]

    def _temporal_mil_loss(self, frame_input: Tensor, enc: dict[str, Tensor], labels: Tensor, own: Tensor) -> Tensor:
        """Bag loss: binary cross-entropy of each predicate's max over frames against the weak multi-hot labels
        (a predicate absent from the video's labels for this pair must not fire on any frame). The classifier
        sees only its frame (``temporal_mil_input``: node input f_i and its change over the neighbouring frames,
        or the attended pair's geometry): on the frame LSTM's states, which summarise the whole past, it fires
        at the end of every video. Attention loss:
        with the classifier detached, ``temporal_mil_target`` "pool": -log Σ_t pool_t σ(s_own(t)), which moves the
        temporal attention onto the frames where the query's predicate is detected; "distill": cross-entropy of
        β1 (over frames) and β2 (over clips) against σ(s_own)^γ normalised (per clip: its frames' mean first)."""
        c = self.config
        scores = self.predicate_mil(frame_input)  # [B,N,P]
        bag = F.binary_cross_entropy_with_logits(scores.amax(dim=1), labels, reduction="none").sum(-1).mean()
        own_scores = scores.detach().gather(2, own[:, None, None].expand(-1, scores.shape[1], 1)).squeeze(-1)
        fire = torch.sigmoid(own_scores)  # [B,N]
        if c.temporal_mil_target == "pool":
            return bag - torch.log((enc["pool"] * fire).sum(-1).clamp(min=1e-12)).mean()
        gamma = float(c.temporal_mil_sharpness)
        frame_target = fire.pow(gamma)
        frame_target = frame_target / frame_target.sum(-1, keepdim=True).clamp(min=1e-12)
        clip_target = fire.reshape(fire.shape[0], c.num_clips, c.clip_len).mean(-1).pow(gamma)
        clip_target = clip_target / clip_target.sum(-1, keepdim=True).clamp(min=1e-12)
        frame_ce = -(frame_target * torch.log(enc["beta1"].clamp(min=1e-12))).sum(-1).mean()
        clip_ce = -(clip_target * torch.log(enc["beta2"].clamp(min=1e-12))).sum(-1).mean()
        return bag + frame_ce + clip_ce

    def _temporal_aux_loss(self, f_l1: Tensor, pool: Tensor, query_ids: Tensor) -> Tensor:
        """Multiple-instance reconstruction of the predicate: each frame predicts the predicate's words from
        f_l1, the temporal attention mixes the per-frame probabilities, and the loss is -log of the mixture
        for each predicate word. The attention is pushed to the frames that show the predicate."""
        log_p = torch.log_softmax(self.predicate_aux(f_l1), dim=-1)  # [B,N,V]
        pred_ids = query_ids[:, 1:QUERY_LEN - 1]  # [B,3], 0 = padding
        picked = log_p.gather(2, pred_ids.unsqueeze(1).expand(-1, log_p.shape[1], -1))  # [B,N,3]
        mixed = torch.logsumexp(picked + torch.log(pool.clamp(min=1e-12)).unsqueeze(-1), dim=1)  # [B,3]
        mask = (pred_ids != 0).to(mixed.dtype)
        return -(mixed * mask).sum() / mask.sum().clamp(min=1.0)

    def _word_aux_loss(self, f_s: Tensor, f_o: Tensor, query_ids: Tensor) -> Tensor:
        """Mean over frames of -log P(subject | f_s) - log P(object | f_o): only the query's own words are used
        (weak supervision), and it rewards α_s (α_o) for picking regions that look like the named category."""
        B, N, _ = f_s.shape
        subj = query_ids[:, 0].unsqueeze(1).expand(B, N).reshape(-1)
        obj = query_ids[:, QUERY_LEN - 1].unsqueeze(1).expand(B, N).reshape(-1)
        ls = F.cross_entropy(self.word_aux(f_s).reshape(B * N, -1), subj)
        lo = F.cross_entropy(self.word_aux(f_o).reshape(B * N, -1), obj)
        return ls + lo

    # ------------------------------------------------------------------------------------------
    def _word_vectors(self, ids: Tensor) -> Tensor:
        """v(w) for token ids, scaled to unit length with ``word_norm`` (padding stays zero)."""
        vec = self.word_table(ids)
        if self.config.word_norm:
            vec = vec / vec.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        return vec

    def _queries(self, query_ids: Tensor) -> tuple[Tensor, Tensor]:
        """``attend``'s relation side from per-token tables: the spatial queries [R,2,E] (subject, object; scaled
        by 1/sqrt(A)) and the relation context f_R [R,H].

        Everything that depends on one token only is a [vocab, ...] table computed from the weights (ONNX
        Runtime folds it into an initializer), so a query costs a few Gathers. The predicate's mean moves
        inside W_word (linear) and ahead of the ReLU, as in ``_words``; only rounding differs."""
        c = self.config
        E = c.region_dim
        table = self.word_table.weight
        if c.word_norm:
            table = table / table.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        w_word = F.linear(table, self.word.weight)  # [V,E] W_word v(w); the padding row stays 0
        g_tok = F.relu(w_word + self.word.bias)  # g(w) [V,E]
        w_s, w_o = self.sau_region.weight.chunk(2, dim=0)
        scale = float(c.attention_dim) ** -0.5
        w_ctx = self.relation_context.weight  # [H, 2E or 3E]: [subject, (predicate,) object] columns
        # subject rows then object rows of each table; ids + [0, V] index them with one Gather
        q_tab = torch.cat([self.sau_word_s(g_tok) @ w_s, self.sau_word_o(g_tok) @ w_o]) * scale  # [2V,E]
        ctx_tab = torch.cat([g_tok @ w_ctx[:, :E].t(), g_tok @ w_ctx[:, -E:].t()])  # [2V,H]
        so_ids = query_ids.index_select(1, self.so_cols) + self.so_offsets  # [R,2]
        q = F.embedding(so_ids, q_tab)  # [R,2,E]
        f_rel = F.embedding(so_ids, ctx_tab).sum(1)  # [R,H]
        if c.uses_predicate and c.relation_context_predicate:
            pred_ids = query_ids[:, 1:QUERY_LEN - 1]
            is_word = (torch.arange(c.vocab_size, device=table.device) != 0).to(table.dtype).unsqueeze(-1)  # [V,1]
            count = F.embedding(pred_ids, is_word).sum(1).clamp(min=1.0)  # [R,1] non-pad predicate words
            g_p = F.relu(F.embedding(pred_ids, w_word).sum(1) / count + self.word.bias)  # [R,E]
            f_rel = f_rel + F.linear(g_p, w_ctx[:, E:2 * E])
        return q, self.context_norm(f_rel + self.relation_context.bias)

    def _words(self, query_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """g(S), g(P), g(O) [R,E]; the predicate vector is the mean of its non-pad word vectors."""
        vec = self._word_vectors(query_ids)  # [R,5,W]
        pred_ids = query_ids[:, 1:QUERY_LEN - 1]
        mask = (pred_ids != 0).to(vec.dtype).unsqueeze(-1)
        v_pred = (vec[:, 1:QUERY_LEN - 1] * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        g = lambda v: F.relu(self.word(v))  # noqa: E731
        return g(vec[:, 0]), g(v_pred), g(vec[:, QUERY_LEN - 1])

    def _encode(self, region_emb: Tensor, query_ids: Tensor, video_index: Tensor | None = None) -> dict[str, Tensor]:
        """region_emb [V,N,M,E] and query_ids [R,5] -> attentions and featv; query r uses video
        ``video_index[r]``, or with ``video_index=None`` the single video (V=1) broadcast over R."""
        c = self.config
        g_s, g_p, g_o = self._words(query_ids)
        if c.pair_geometry or c.temporal_head:
            region_emb, region_box = region_emb[..., : c.region_dim], region_emb[..., c.region_dim:]
        # spatial attention (eqs. 3-4)
        if c.spatial_scoring == "dot":
            # (W f(B) + b)·(W' g)/sqrt(A) = f(B)·(Wᵀ W' g)/sqrt(A) + const: the query moves into region space,
            # so there is no per-video projection and no [R,N,M,A] tensor (the constant cancels in the softmax)
            # subject and object queries go through the region tensor together: one pass instead of two
            w_s, w_o = self.sau_region.weight.chunk(2, dim=0)  # [A,E] each
            scale = float(c.attention_dim) ** -0.5
            q = torch.cat([torch.matmul(self.sau_word_s(g_s), w_s), torch.matmul(self.sau_word_o(g_o), w_o)]) * scale
            alpha = _dot_attention(region_emb, q, _twice(video_index))  # [2R,N,M]
            R = g_s.shape[0]
            alpha_s, alpha_o = alpha[:R], alpha[R:]
        else:  # the region half of W1 is computed once per video
            proj = self.sau_region(region_emb)  # [V,N,M,2A]
            if video_index is not None:
                proj = proj.index_select(0, video_index)
            proj_s, proj_o = proj.chunk(2, dim=-1)
            ws = self.sau_word_s(g_s)[:, None, None, :]
            wo = self.sau_word_o(g_o)[:, None, None, :]
            alpha_s = torch.softmax(self.sau_out_s(torch.tanh(proj_s + ws)).squeeze(-1), dim=-1)  # [R,N,M]
            alpha_o = torch.softmax(self.sau_out_o(torch.tanh(proj_o + wo)).squeeze(-1), dim=-1)
        # f = Σ_m α f(B): one GEMM per frame over all videos, α placed in its video's block (no gather)
        pooled = _pool_regions(torch.cat([alpha_s, alpha_o]), region_emb, _twice(video_index))  # [2R,N,E]
        f_s, f_o = pooled[: alpha_s.shape[0]], pooled[alpha_s.shape[0]:]
        attended_s, attended_o = f_s, f_o
        # attention shifting (eqs. 5-6)
        if c.message_passing:
            f_so = F.relu(self.w_so(alpha_s))
            f_os = F.relu(self.w_os(alpha_o))
            f_s, f_o = f_s + f_os, f_o + f_so
        node = self.node(self.drop(torch.cat([f_s, f_o], dim=-1)))  # [R,N,E]
        if c.pair_geometry:  # where the attended subject and object are, relative to each other
            b_s, b_o = _pool_regions(alpha_s, region_box, video_index), _pool_regions(alpha_o, region_box, video_index)
            node = node + F.relu(self.geometry(torch.cat([b_s, b_o, b_s - b_o], dim=-1)))
        node = self.node_norm(node)
        f_l1, _ = self.lstm_frame(node)  # [R,N,H]
        if c.frame_skip:
            f_l1 = f_l1 + self.frame_skip(node)
        rel_parts = [g_s, g_p, g_o] if (c.uses_predicate and c.relation_context_predicate) else [g_s, g_o]
        f_rel = self.context_norm(self.relation_context(torch.cat(rel_parts, dim=-1)))  # [R,H]
        R, N, Hd = f_l1.shape
        if c.clip_attention:
            f_clip = f_l1.reshape(R, c.num_clips, c.clip_len, Hd)[:, :, -1]  # last frame of each clip [R,H_clips,Hd]
            beta2 = self.tau_clip(f_clip, f_rel)
            clip_out, _ = self.lstm_clip(beta2.unsqueeze(-1) * f_clip)
            frame_ctx = clip_out[:, -1]
        else:
            frame_ctx = f_rel
            beta2 = torch.zeros_like(f_l1[:, : c.num_clips, 0])
        if c.temporal_attention:
            beta1 = self.tau_frame(f_l1, frame_ctx)
        else:  # w/o TAU: uniform attention at both levels, so linking covers the whole video
            beta1 = torch.ones_like(f_l1[..., 0]) / float(N)
            beta2 = torch.ones_like(f_l1[:, : c.num_clips, 0]) / float(c.num_clips)
        pool = beta1
        if c.clip_pooling and c.clip_attention and c.temporal_attention:
            pool = 0.5 * (beta1 + beta2.repeat_interleave(c.clip_len, dim=1) / float(c.clip_len))
        featv = torch.matmul(pool.unsqueeze(1), f_l1).squeeze(1)  # [R,H]
        return {"alpha_s": alpha_s, "alpha_o": alpha_o, "beta1": beta1, "beta2": beta2, "featv": featv,
                "f_s": attended_s, "f_o": attended_o, "f_l1": f_l1, "pool": pool, "node": node}

    def _decode(self, featv: Tensor, targets: Tensor) -> Tensor:
        """Teacher-forced LSTM decoder: featv [B,H], targets [B,T] -> logits [B,T,vocab]."""
        B, T = targets.shape
        bos = torch.full((B, 1), 1, dtype=targets.dtype, device=targets.device)
        inputs = torch.cat([bos, targets[:, :-1]], dim=1)
        words = F.relu(self.word(self._word_vectors(inputs)))  # [B,T,E]
        feat = self.drop(featv)
        x = torch.cat([words, feat.unsqueeze(1).expand(B, T, feat.shape[-1])], dim=-1)
        h0 = torch.tanh(self.dec_init(feat)).unsqueeze(0)
        out, _ = self.decoder(x, (h0, torch.zeros_like(h0)))
        return self.dec_out(self.drop(out))


def _lstm_time_major(lstm: nn.LSTM, x: Tensor) -> Tensor:
    """Run a ``batch_first`` one-layer LSTM on time-major x [T,B,in] -> [T,B,H] with its own weights (the
    ONNX LSTM's native layout: no transposes around it), zero initial state."""
    h0 = x.new_zeros(1, x.shape[1], lstm.hidden_size)
    out, _, _ = torch.lstm(x, (h0, h0), lstm._flat_weights, lstm.bias, lstm.num_layers, 0.0, False,
                           lstm.bidirectional, False)
    return out


def _temporal_attention_time_major(tau: nn.Module, x: Tensor, ctx: Tensor) -> Tensor:
    """``tau(x, ctx)`` for time-major x [T,R,in]: -> softmax weights [R,T]. Only the [T,R] scores are transposed."""
    if isinstance(tau, DotAttention):
        scores = (tau.inp(x) * tau.ctx(ctx)).sum(-1) * tau.scale  # [T,R]
    else:
        scores = tau.out(torch.tanh(tau.inp(x) + tau.ctx(ctx))).squeeze(-1)  # [T,R]
    return torch.softmax(scores.t(), dim=-1)


def _twice(video_index: Tensor | None) -> Tensor | None:
    """The video index of [subject queries; object queries] stacked along the relation axis."""
    return None if video_index is None else torch.cat([video_index, video_index])


def _dot_attention(region_emb: Tensor, query: Tensor, video_index: Tensor | None) -> Tensor:
    """softmax over regions of region_emb [V,N,M,E] · query [Q,E] -> α [Q,N,M]. One video (inference): one
    MatMul [N*M,E] @ [E,Q], softmax in that layout, and only the small α transposed (the region tensor never
    is); several videos (training): scores against every video, then each query's own."""
    V, N, M, E = region_emb.shape
    if video_index is None:
        scores = torch.matmul(region_emb.reshape(N * M, E), query.t())  # [N*M,Q]
        return torch.softmax(scores.reshape(N, M, -1), dim=1).permute(2, 0, 1)
    scores = torch.matmul(region_emb.reshape(V, N * M, E), query.t())  # [V,N*M,Q]
    Q = query.shape[0]
    picked = scores.permute(2, 0, 1)[torch.arange(Q, device=region_emb.device), video_index]  # [Q,N*M]
    return torch.softmax(picked.reshape(Q, N, M), dim=-1)


def _pool_regions(alpha: Tensor, values: Tensor, video_index: Tensor | None) -> Tensor:
    """Σ_m α[r,n,m] values[v(r),n,m,:] -> [R,N,K]. One video (inference): a batched MatMul over frames, which
    exports to one ONNX MatMul. Several videos (training): one GEMM per frame with α placed in its video's
    block (no gather of the [N,M,K] video tensors per sample)."""
    if video_index is None:
        return torch.matmul(alpha.transpose(0, 1), values.squeeze(0)).transpose(0, 1)  # [N,R,M] @ [N,M,K]
    route = F.one_hot(video_index, values.shape[0]).to(alpha.dtype)[:, None, :, None]  # [R,1,V,1]
    return torch.einsum("rnvm,vnmk->rnk", alpha.unsqueeze(2) * route, values)


GEOMETRY_DIM = 27
RELATIVE_DIM = GEOMETRY_DIM + 30


def pair_geometry_features(box_s: Tensor, box_o: Tensor, step: int = 2, velocity_scale: Tensor | None = None) -> Tensor:
    """Per-frame geometry of an attended pair from pooled normalised boxes [B,N,5] (x1, y1, x2, y2, area):
    both boxes, their offset, their velocities over ±``step`` frames, and log ratios of area and height.
    These are the cues the relations of a scene depend on (left of, larger, moving toward...) -> [B,N,27].
    One implementation with the runtime's (:func:`vrgv.instances.pair_geometry_features`, here on torch)."""
    from vrgv.instances import pair_geometry_features as features

    return features(box_s, box_o, step, velocity_scale, xp=torch)


def pair_relative_features(box_s: Tensor, box_o: Tensor, step: int = 2, velocity_scale: Tensor | None = None) -> Tensor:
    """``pair_geometry_features`` plus the pair's relative layout and motion in its own size unit -> [B,N,57]
    (:func:`vrgv.instances.pair_relative_features`, here on torch)."""
    from vrgv.instances import pair_relative_features as features

    return features(box_s, box_o, step, velocity_scale, xp=torch)


def distinct_attention(alpha_o: Tensor, alpha_s: Tensor) -> Tensor:
    """The object's attention [R,N,M] with each region's weight scaled by how far it is from being the subject's
    peak in that frame (its own peak gets 0), renormalised: the object of a same-category query goes elsewhere."""
    kept = alpha_o * (1.0 - alpha_s / alpha_s.amax(-1, keepdim=True))
    return kept / (kept.sum(-1, keepdim=True) + 1e-37)


def beta_per_frame(beta1: np.ndarray, beta2: np.ndarray, clip_len: int) -> np.ndarray:
    """β = β1 + β2 with each clip's value given to its L frames (paper §3.4): [R,N] + [R,H] -> [R,N]."""
    return beta1 + np.repeat(beta2, clip_len, axis=-1)
