"""Tests of ``vrgv.render`` (annotated mp4, frame count, colours) and ``vrgv.plot`` (β figure)."""
from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from test_grounder import RELS, make_grounder, make_video
from vrgv import Grounding, Trajectory
from vrgv.errors import ConfigError, VideoError
from vrgv.render import SUBJECT_BGR, OBJECT_BGR, Renderer, iter_frames, render_frame, render_groundings, save_frame


def _count_with_opencv(path: str) -> int:
    cap = cv2.VideoCapture(path)
    assert cap.isOpened()
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def _write_mp4(path, frames_rgb, fps=12.0):
    h, w = frames_rgb.shape[1:3]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames_rgb:
        wr.write(f[..., ::-1])
    wr.release()


def _manual_grounding(num_frames: int) -> Grounding:
    fids = np.arange(5, 20)
    sub = np.tile([2.0, 2.0, 20.0, 30.0], (len(fids), 1))
    obj = np.tile([30.0, 10.0, 60.0, 40.0], (len(fids), 1))
    beta_ids = np.round(np.linspace(0, num_frames - 1, 12)).astype(int)
    return Grounding("person-ride-bicycle", Trajectory(fids, sub), Trajectory(fids, obj), 5, 19, 0.8,
                     video_id="v", beta=np.linspace(0, 1, 12), beta_frame_ids=beta_ids)


def test_render_array_and_file_keep_the_frame_count(tmp_path):
    video = make_video(0, frames=33)
    g = make_grounder()
    results = g.ground_many(video, RELS[:2], video_id="v0")
    out = render_groundings(video, results, tmp_path / "a.mp4")
    assert _count_with_opencv(out) == 33
    src = tmp_path / "src.mp4"
    _write_mp4(src, video)
    out2 = results[0].render(str(src), str(tmp_path / "b.mp4"))
    assert _count_with_opencv(out2) == 33
    cap = cv2.VideoCapture(out2)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0, abs=0.01)
    ok, frame = cap.read()
    assert ok and frame.shape[1] >= 640  # 64-px video upscaled for readable text
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed


def test_render_frame_folder(tmp_path):
    video = make_video(1, frames=9)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(video):
        cv2.imwrite(str(folder / f"{i}.png"), f[..., ::-1])
    assert len(list(iter_frames(folder))) == 9
    out = render_groundings(folder, [_manual_grounding(9)], tmp_path / "f.mp4")
    assert _count_with_opencv(out) == 9


def test_boxes_are_drawn_in_subject_red_and_object_green():
    video = np.zeros((30, 48, 64, 3), np.uint8)
    g = _manual_grounding(30)
    r = Renderer([g], 64, 48, 30, min_width=0, show_text=False)
    img = r.draw(iter_frames(video).__next__(), 10)
    assert tuple(img[20, 2]) == SUBJECT_BGR  # left edge of the subject box
    assert tuple(img[25, 60]) == OBJECT_BGR  # right edge of the object box
    outside = r.draw(np.zeros((48, 64, 3), np.uint8), 25)  # after the segment: no boxes
    assert not np.any(np.all(outside[: r.pic_h] == SUBJECT_BGR, axis=-1))
    assert img.shape[0] == 48 + r.strip.shape[0]


def test_render_frame_and_save(tmp_path):
    video = make_video(2, frames=20)
    img = render_frame(video, _manual_grounding(20), 8)
    assert img.dtype == np.uint8 and img.shape[1] >= 640
    path = save_frame(img, tmp_path / "x.png")
    assert cv2.imread(path).shape == img.shape
    with pytest.raises(VideoError, match="past the end"):
        render_frame(video, _manual_grounding(20), 99)


def test_render_errors(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        render_groundings(tmp_path / "nope.mp4", [_manual_grounding(10)], tmp_path / "o.mp4")
    with pytest.raises(VideoError, match="at least one"):
        render_groundings(make_video(0), [], tmp_path / "o.mp4")
    regions = make_grounder().extract(make_video(0))
    with pytest.raises(VideoError, match="no pixels"):
        render_groundings(regions, [_manual_grounding(10)], tmp_path / "o.mp4")


def test_plot_beta_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    g = make_grounder().ground(make_video(3), RELS[0], video_id="v3")
    fig = g.plot(str(tmp_path / "beta.png"))
    assert (tmp_path / "beta.png").stat().st_size > 1000
    assert fig.axes[0].get_xlabel() == "frame"
    from vrgv.plot import plot_beta

    plot_beta([g, _manual_grounding(40)], tmp_path / "two.png", sigma=0.2)
    assert (tmp_path / "two.png").is_file()


def test_plot_needs_beta_and_matplotlib(tmp_path, monkeypatch):
    from vrgv.plot import plot_beta

    g = _manual_grounding(20)
    no_beta = Grounding.from_dict(g.to_dict())
    with pytest.raises(ConfigError, match="carry no β"):
        plot_beta(no_beta)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match=r"pip install 'vrgv\[plot\]'"):
        plot_beta(g, tmp_path / "p.png")


def test_demo_writes_results_pictures_and_scores(tmp_path, monkeypatch, capsys):
    pytest.importorskip("vrgv.synth")
    import json

    from vrgv.demo import print_report, run_demo
    from vrgv.grounder import Grounder

    monkeypatch.setattr(Grounder, "load", classmethod(lambda cls, *a, **k: make_grounder()))
    res = run_demo(tmp_path / "demo", show=2)
    pred = json.loads(res.results_json.read_text())
    (vid,) = pred
    assert len(pred[vid]) == len(res.rows) > 0
    frames = _count_with_opencv(str(res.video))
    assert [_count_with_opencv(str(v)) for v in res.videos] == [frames]
    assert res.beta_plot.is_file() and res.frame_png.is_file()
    assert set(res.overall) == {"AccS", "AccO", "AccR"}
    scores = json.loads((tmp_path / "demo" / "scores.json").read_text())
    assert scores["overall"] == res.overall
    print_report(res)
    out = capsys.readouterr().out
    assert "AccR" in out and res.rows[0]["relation"] in out
