"""vrgv.video: exact sampled frames from video files, frame folders and arrays; errors name the input."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vrgv.errors import VideoError
from vrgv.regions import sample_frame_ids
from vrgv.video import VideoFrames, count_frames, list_frame_files, read_video

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
STEP = 8  # frame i is filled with grey level STEP * i, so a decoded frame tells its own index


def write_video(path: Path, num_frames: int, fourcc: str = "MJPG", size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for i in range(num_frames):
        writer.write(np.full((size[1], size[0], 3), STEP * i, np.uint8))
    writer.release()
    return path


def decoded_index(frames: np.ndarray) -> np.ndarray:
    return np.round(frames.reshape(frames.shape[0], -1).mean(1) / STEP).astype(int)


@pytest.mark.parametrize("fourcc,suffix", [("MJPG", ".avi"), ("mp4v", ".mp4")])
def test_video_file_returns_exactly_the_sampled_frames(tmp_path: Path, fourcc: str, suffix: str) -> None:
    path = write_video(tmp_path / f"v{suffix}", 30, fourcc)
    video = read_video(path, 10)
    expected = sample_frame_ids(30, 10)
    assert video.num_frames == 30 and (video.width, video.height) == (64, 48) and video.fps == pytest.approx(10)
    np.testing.assert_array_equal(video.frame_ids, expected)
    assert video.frames.shape == (10, 48, 64, 3) and video.frames.dtype == np.uint8
    np.testing.assert_array_equal(decoded_index(video.frames), expected)
    assert video.video_id == "v"


def test_short_and_single_frame_videos_repeat_frame_ids(tmp_path: Path) -> None:
    video = read_video(write_video(tmp_path / "one.avi", 1), 120)
    assert video.num_frames == 1 and video.frames.shape[0] == 120 and set(video.frame_ids.tolist()) == {0}
    video = read_video(write_video(tmp_path / "five.avi", 5), 12)
    np.testing.assert_array_equal(video.frame_ids, sample_frame_ids(5, 12))
    np.testing.assert_array_equal(decoded_index(video.frames), video.frame_ids)


def test_truncated_video_uses_the_true_decoded_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    full = write_video(tmp_path / "full.avi", 30)
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    true_count = count_frames(cut)
    assert 0 < true_count < 30  # the AVI header still says 30
    video = read_video(cut, 10)
    assert video.num_frames == true_count
    np.testing.assert_array_equal(video.frame_ids, sample_frame_ids(true_count, 10))
    np.testing.assert_array_equal(decoded_index(video.frames), video.frame_ids)
    assert "container says 30 frames" in caplog.text


def test_max_side_downscales_frames_but_keeps_original_size(tmp_path: Path) -> None:
    video = read_video(write_video(tmp_path / "big.avi", 4, size=(320, 160)), 4, max_side=80)
    assert video.frames.shape == (4, 40, 80, 3) and (video.width, video.height) == (320, 160)
    assert video.scale == (4.0, 4.0)


@pytest.mark.parametrize(
    "shape", [(7, 20, 30), (7, 20, 30, 1), (7, 20, 30, 3), (7, 20, 30, 4)], ids=["gray", "gray1", "rgb", "rgba"]
)
def test_arrays_of_every_channel_layout_become_rgb(shape: tuple[int, ...]) -> None:
    arr = np.zeros(shape, np.uint8)
    for i in range(shape[0]):
        arr[i] = i * 10
    video = read_video(arr, 5, video_id="a", fps=24)
    assert video.frames.shape == (5, 20, 30, 3) and video.num_frames == 7 and video.fps == 24.0
    np.testing.assert_array_equal(video.frames[:, 0, 0, 0], video.frame_ids * 10)
    assert video.video_id == "a"


def test_array_errors_say_what_to_do() -> None:
    with pytest.raises(VideoError, match="uint8"):
        read_video(np.zeros((3, 8, 8, 3), np.float32))
    with pytest.raises(VideoError, match=r"arr\[None\]"):
        read_video(np.zeros((8, 8, 3, 2), np.uint8))
    with pytest.raises(VideoError, match="no frames"):
        read_video(np.zeros((0, 8, 8, 3), np.uint8))


def test_frame_folder_natural_order_and_colour(tmp_path: Path) -> None:
    for i in range(12):  # names sort wrongly as text: 10.png < 2.png
        img = np.full((16, 24), i * 20, np.uint8)  # grayscale files
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
    assert [p.stem for p in list_frame_files(tmp_path)][:3] == ["0", "1", "2"]
    video = read_video(tmp_path, 6)
    assert video.num_frames == 12 and video.frames.shape == (6, 16, 24, 3) and video.video_id == tmp_path.name
    np.testing.assert_array_equal(video.frames[:, 0, 0, 1], video.frame_ids * 20)
    assert video.fps is None


def test_frame_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="holds no images"):
        read_video(tmp_path)
    cv2.imwrite(str(tmp_path / "000000.jpg"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "000001.jpg"), np.zeros((9, 8, 3), np.uint8))
    with pytest.raises(VideoError, match="one size"):
        read_video(tmp_path, 2)
    (tmp_path / "000001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoError, match="000001.jpg.*cannot be decoded"):
        read_video(tmp_path, 2)


def test_file_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="missing.mp4.*does not exist"):
        read_video(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(VideoError, match="empty.mp4.*0-byte"):
        read_video(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"hello, this is not a video" * 10)
    with pytest.raises(VideoError, match="junk.mp4.*not a video"):
        read_video(junk)
    notes = tmp_path / "LICENSE.txt"  # FFmpeg's tty demuxer would "decode" this as a 640x400 video
    notes.write_text("Attribution 4.0 International\n\n" + "Creative Commons licence text. " * 400)
    with pytest.raises(VideoError, match=r"LICENSE\.txt' is a text file.*not a video"):
        read_video(notes)
    with pytest.raises(VideoError, match="num_samples"):
        read_video(np.zeros((2, 8, 8, 3), np.uint8), 0)


def test_video_frames_validation() -> None:
    with pytest.raises(VideoError, match="frame_ids"):
        VideoFrames(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 5]), num_frames=3, width=4, height=4)
    with pytest.raises(VideoError, match="uint8"):
        VideoFrames(np.zeros((2, 4, 4), np.uint8), np.array([0, 1]), num_frames=3, width=4, height=4)


@pytest.mark.shared
@pytest.mark.parametrize("name,count,size", [("bikes", 250, (640, 272)), ("bigbuckbunny", 132, (1280, 720))])
def test_real_clips(name: str, count: int, size: tuple[int, int]) -> None:
    path = SHARED / "videos" / f"{name}.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not available (../shared is absent)")
    video = read_video(path, 120, max_side=640)
    assert video.num_frames == count == count_frames(path)
    assert (video.width, video.height) == size and video.fps == pytest.approx(25.0)
    assert video.frames.shape[0] == 120 and max(video.frames.shape[1:3]) <= 640
    assert video.frames.std() > 10  # real content, not blank frames
