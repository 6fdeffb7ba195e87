//! The real binary in a real window under a virtual display (Xvfb): it opens, logs in, calls the
//! echo demo peer (or four group peers), and draws it; the screenshots are checked for the call
//! panel's content and kept in `target/screenshots/` to be looked at.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

use std::process::Command;

/// The `ImageMagick` command: `magick` (version 7) or `convert` (version 6), whichever is on the
/// path.
fn imagemagick() -> &'static str {
    let found = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
    };
    if found("magick") { "magick" } else { "convert" }
}

/// A figure of a rectangle of an image, measured by `ImageMagick`: the crop, then `steps`, then
/// `format` printed.
fn measure<T: std::str::FromStr>(
    png: &std::path::Path,
    geometry: &str,
    steps: &[&str],
    format: &str,
) -> T {
    let output = Command::new(imagemagick())
        .arg(png)
        .args(["-crop", geometry, "+repage"])
        .args(steps)
        .args(["-format", format, "info:"])
        .output()
        .expect("ImageMagick (the test command installs imagemagick)");
    let text = String::from_utf8_lossy(&output.stdout);
    let Ok(figure) = text.trim().parse() else {
        panic!("ImageMagick printed {text:?}");
    };
    figure
}

/// Distinct colours in a rectangle of an image.
fn distinct_colours(png: &std::path::Path, geometry: &str) -> usize {
    measure(png, geometry, &[], "%k")
}

/// Mean HSL saturation (0..1) of a rectangle: the window's chrome is grey, the test pattern is
/// saturated colour bars.
fn mean_saturation(png: &std::path::Path, geometry: &str) -> f64 {
    let steps = ["-colorspace", "HSL", "-channel", "G", "-separate"];
    measure(png, geometry, &steps, "%[fx:mean]")
}

/// The share of a rectangle's pixels that are saturated colour (the test pattern, not chrome).
fn saturated_share(png: &std::path::Path, geometry: &str) -> f64 {
    let steps = [
        "-colorspace",
        "HSL",
        "-channel",
        "G",
        "-separate",
        "-threshold",
        "35%",
    ];
    measure(png, geometry, &steps, "%[fx:mean]")
}

/// Where the call panel of the default layout lies in a window of `width` x `height`, inset by
/// a margin: the middle column (22 % to 75 % of the width) of the upper row (56 % of the
/// height below the toolbar), below its tab bar.
fn call_panel(width: u32, height: u32) -> String {
    let toolbar = 30;
    let left = width * 22 / 100 + 10;
    let right = width * 75 / 100 - 10;
    let top = toolbar + 24 + 70;
    let bottom = toolbar + (height - toolbar) * 56 / 100 - 10;
    format!("{}x{}+{left}+{top}", right - left, bottom - top)
}

/// Runs the window at `width` x `height` on a screen of that size with `args` and its data in
/// `dir`, for `secs` seconds, and returns the screenshot (kept under
/// `target/screenshots/name.png`).
fn screenshot(
    name: &str,
    dir: &std::path::Path,
    (width, height): (u32, u32),
    args: &str,
    secs: u32,
) -> std::path::PathBuf {
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let script = format!(
        "{bin} --data-dir {data} --window-size {width}x{height} {args} & app=$!; sleep {secs}; \
         import -window root {shot}; kill $app; wait $app",
        bin = env!("CARGO_BIN_EXE_callscope"),
        data = dir.display(),
        shot = shot.display(),
    );
    let status = Command::new("xvfb-run")
        .args([
            "-a",
            "-s",
            &format!("-screen 0 {width}x{height}x24"),
            "sh",
            "-c",
            &script,
        ])
        .env("XDG_RUNTIME_DIR", dir)
        .status()
        .expect("xvfb-run (the test command installs xvfb and xauth)");
    assert!(
        shot.exists(),
        "no screenshot taken (xvfb-run exited with {status})"
    );
    shot
}

#[test]
fn a_five_person_video_call_shows_every_tile_at_1024x700_and_1600x1000() {
    let peers = "--call group-a --call group-b --call group-c --call group-d";
    for (width, height) in [(1024, 700), (1600, 1000)] {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("group-call-{width}x{height}");
        let shot = screenshot(&name, dir.path(), (width, height), peers, 16);
        assert!(
            distinct_colours(&shot, &format!("{width}x{height}+0+0")) > 50,
            "the window drew almost nothing at {width}x{height}"
        );
        // Four remote tiles and the preview of colour bars fill much of the call panel; a
        // grid that does not wrap, or a cut-off tile, leaves most of it grey.
        let share = saturated_share(&shot, &call_panel(width, height));
        assert!(
            share > 0.25,
            "at {width}x{height} only {share:.3} of the call panel shows video"
        );
    }
}

#[test]
fn the_app_opens_a_window_and_shows_a_call_to_echo() {
    let dir = tempfile::tempdir().unwrap();
    let shot = screenshot("echo-1200x800", dir.path(), (1200, 800), "--call echo", 8);
    // The window covers the top left 1200x800; a blank or failed window is one or two colours.
    assert!(
        distinct_colours(&shot, "1200x800+0+0") > 50,
        "the window drew almost nothing"
    );
    // The call panel (top centre) shows the connected call: text drawn there, not an empty
    // panel.
    assert!(
        distinct_colours(&shot, "500x60+280+55") > 10,
        "the call view is empty"
    );
    // Echo's video fills the call panel; its middle is the test pattern.
    let saturation = mean_saturation(&shot, &call_panel(1200, 800));
    assert!(
        saturation > 0.25,
        "the remote video area is blank (mean saturation {saturation:.3})"
    );
    // The timeline recorded the call the window placed.
    let timeline = Command::new(env!("CARGO_BIN_EXE_callscope"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["timeline", "--kind", "onCallBegin"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&timeline.stdout);
    assert!(
        text.contains("onCallBegin"),
        "the window's call is in the timeline: {text}"
    );
    // And what it recorded keeps the contract (the window was closed mid-call).
    let export = dir.path().join("run.jsonl");
    let exported = Command::new(env!("CARGO_BIN_EXE_callscope"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["timeline", "--export"])
        .arg(&export)
        .status()
        .unwrap();
    assert!(exported.success());
    let checked = Command::new(env!("CARGO_BIN_EXE_callscope"))
        .arg("check")
        .arg(&export)
        .arg("--allow-open-calls")
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
}
