"""Export: the denoising as an animated WebP and a contact sheet, frames labelled, nothing overwritten."""

from PIL import Image

from diffusers_tui.engine.files import export
from tests.frames import recorded_step


def _snapshots(count, side=16):
    return [recorded_step(i, count, side, red=i * 10 % 255, timestep=1000 - i, sigma=1.0 / i, elapsed_s=0.1 * i)
            for i in range(1, count + 1)]


def test_export_writes_every_step_and_the_final_image(tmp_path):
    done = export.export_denoising(_snapshots(9), Image.new("RGB", (64, 64), "blue"), tmp_path / "run")
    assert done.frames == 10 and done.animation.name == "denoising.webp"
    with Image.open(done.animation) as animation:
        assert animation.n_frames == 10 and animation.is_animated
        assert animation.size == (256, 256 + export.LABEL_HEIGHT)  # 64 px scaled to 256, with a label strip
    with Image.open(done.contact_sheet) as sheet:
        assert sheet.size == (4 * 256, 3 * (256 + export.LABEL_HEIGHT))  # 10 frames: 4 across, 3 down


def test_long_runs_are_picked_evenly_and_a_second_export_never_overwrites(tmp_path):
    snapshots = _snapshots(1000, side=8)
    first = export.export_denoising(snapshots, Image.new("RGB", (8, 8)), tmp_path)
    assert first.frames == export.MAX_ANIMATION_FRAMES
    picked = export.pick(snapshots, 64)
    assert len(picked) == 64 and picked[0].step == 1 and picked[-1].step == 1000
    second = export.export_denoising(snapshots[:3], Image.new("RGB", (8, 8)), tmp_path)
    assert second.animation.name == "denoising-2.webp" and second.contact_sheet.name == "contact-sheet-2.png"
    with Image.open(first.animation) as animation:
        assert animation.n_frames == export.MAX_ANIMATION_FRAMES  # the first export is untouched
