//! The real binary in a real window under a virtual display (Xvfb): it opens, logs in, calls the
//! echo demo peer, and draws it; the screenshot is checked for the call view's content.

#![allow(clippy::unwrap_used)] // A test that unwraps fails loudly, which is what it should do.

use std::process::Command;

/// A figure of a rectangle of an image, measured by `ImageMagick`: the crop, then `steps`, then
/// `format` printed.
fn measure<T: std::str::FromStr>(
    png: &std::path::Path,
    geometry: &str,
    steps: &[&str],
    format: &str,
) -> T {
    let output = Command::new("/usr/bin/convert")
        .arg(png)
        .args(["-crop", geometry, "+repage"])
        .args(steps)
        .args(["-format", format, "info:"])
        .output()
        .expect("ImageMagick's convert (the test command installs imagemagick)");
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

#[test]
fn the_app_opens_a_window_and_shows_a_call_to_echo() {
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.png");
    let script = format!(
        "{bin} --data-dir {data} --call echo & app=$!; sleep 8; import -window root {shot}; kill $app; wait $app",
        bin = env!("CARGO_BIN_EXE_callscope"),
        data = dir.path().display(),
        shot = shot.display(),
    );
    let status = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x860x24", "sh", "-c", &script])
        .env("XDG_RUNTIME_DIR", dir.path())
        .status()
        .expect("xvfb-run (the test command installs xvfb and xauth)");
    assert!(
        shot.exists(),
        "no screenshot taken (xvfb-run exited with {status})"
    );
    // The window covers the top left 1200x800; a blank or failed window is one or two colours.
    assert!(
        distinct_colours(&shot, "1200x800+0+0") > 50,
        "the window drew almost nothing"
    );
    // The call view (centre) shows the connected call: text drawn there, not an empty panel.
    assert!(
        distinct_colours(&shot, "440x120+470+30") > 10,
        "the call view is empty"
    );
    // Echo's video: its tile sits at the top left of the call view.
    let saturation = mean_saturation(&shot, "200x130+485+205");
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
