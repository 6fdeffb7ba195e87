//! The real binary in a real window under a virtual display (Xvfb): it opens, logs in, calls the
//! echo demo peer (or four group peers), and draws it; the screen is shot until the call panel
//! shows the video (within a minute), and the shots are kept in `target/screenshots/` to be
//! looked at.

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

/// A virtual display of its own (Xvfb), closed when dropped.
struct Display {
    server: std::process::Child,
    name: String,
}

impl Display {
    fn start((width, height): (u32, u32)) -> Self {
        use std::io::BufRead as _;
        // Xvfb picks a free display number and writes it to the descriptor given.
        let mut server = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Xvfb (the test command installs xvfb)");
        let mut number = String::new();
        std::io::BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut number)
            .unwrap();
        let name = format!(":{}", number.trim());
        assert!(name.len() > 1, "Xvfb named no display");
        Self { server, name }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Runs the window at `width` x `height` on a display of that size with `args` and its data in
/// `dir`, shooting the screen every second until `wanted` holds for a shot (or a minute
/// passes, which fails), and returns that shot (kept under `target/screenshots/name.png`).
fn screenshot_showing(
    name: &str,
    dir: &std::path::Path,
    (width, height): (u32, u32),
    args: &[&str],
    wanted: impl Fn(&std::path::Path) -> bool,
) -> std::path::PathBuf {
    let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&kept).unwrap();
    let shot = kept.join(format!("{name}.png"));
    let display = Display::start((width, height));
    let mut app = Command::new(env!("CARGO_BIN_EXE_callscope"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--window-size")
        .arg(format!("{width}x{height}"))
        .args(args)
        .env("DISPLAY", &display.name)
        .env("XDG_RUNTIME_DIR", dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let seen = loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let taken = Command::new("import")
            .args(["-display", &display.name, "-window", "root"])
            .arg(&shot)
            .status()
            .expect("ImageMagick's import (the test command installs imagemagick)");
        if taken.success() && wanted(&shot) {
            break true;
        }
        if started.elapsed() > std::time::Duration::from_mins(1)
            || app.try_wait().unwrap().is_some()
        {
            break false;
        }
    };
    let _ = app.kill();
    let _ = app.wait();
    assert!(
        seen,
        "{name}: the window never showed it (last shot: {})",
        shot.display()
    );
    shot
}

#[test]
fn a_five_person_video_call_shows_every_tile_at_1024x700_and_1600x1000() {
    let peers = [
        "--call", "group-a", "--call", "group-b", "--call", "group-c", "--call", "group-d",
    ];
    for (width, height) in [(1024, 700), (1600, 1000)] {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("group-call-{width}x{height}");
        // Four remote tiles and the preview of colour bars fill much of the call panel; a
        // grid that does not wrap, or a cut-off tile, leaves most of it grey.
        let panel = call_panel(width, height);
        let shot = screenshot_showing(&name, dir.path(), (width, height), &peers, |shot| {
            saturated_share(shot, &panel) > 0.25
        });
        let share = saturated_share(&shot, &panel);
        println!("at {width}x{height}, {share:.3} of the call panel shows video");
    }
}

#[test]
fn the_app_opens_a_window_and_shows_a_call_to_echo() {
    let dir = tempfile::tempdir().unwrap();
    // Echo's video fills the call panel; its middle is the test pattern.
    let panel = call_panel(1200, 800);
    let shot = screenshot_showing(
        "echo-1200x800",
        dir.path(),
        (1200, 800),
        &["--call", "echo"],
        |shot| mean_saturation(shot, &panel) > 0.25,
    );
    println!(
        "the remote video's mean saturation: {:.3}",
        mean_saturation(&shot, &panel)
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
