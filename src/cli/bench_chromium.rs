//! The reference of `bench network`: a headless Chromium (Debian's `chromium`) as the far end of
//! the caller's impaired link. It runs `benches/chromium/callee.html`, which logs in with our
//! signaling, answers each call with Chromium's fake camera (the bench's .y4m) and speech, and
//! prints its `getStats` once a second on the console. One call measures both senders on the
//! same link at the same time: ours as Chromium decodes it, Chromium's as we decode it.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use callscope::engine::sign_user_sig;

use super::bench_client::SECRET;

/// The reference's user on our server.
pub(super) const USER: &str = "net-chromium";
/// The page's lines kept until read.
const CONSOLE_LINES: usize = 16_384;
/// How long Chromium may take to start and log in.
const START_WAIT: Duration = Duration::from_mins(1);

/// What the page printed: a milestone, or one second's statistics.
#[derive(Debug)]
pub(super) enum PageLine {
    State(String),
    Stats(serde_json::Value),
}

/// A running Chromium with the callee page open, and what it prints.
pub(super) struct Chromium {
    child: Child,
    /// Its own profile directory, removed when it stops.
    profile: PathBuf,
    lines: crossbeam_channel::Receiver<PageLine>,
    /// The product and version, as `chromium --version` says.
    pub(super) version: String,
}

impl Chromium {
    /// The Chromium binary: `binary` if given, else the first of Debian's on this machine.
    pub(super) fn find(binary: Option<&Path>) -> Option<PathBuf> {
        if let Some(binary) = binary {
            return Some(binary.to_owned());
        }
        ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
    }

    /// Starts `binary` with the page logged in to `server` as [`USER`], its camera `camera`
    /// (.y4m) and microphone `speech` (.wav), and waits until it has logged in.
    pub(super) fn start(
        binary: &Path,
        server: &str,
        camera: &Path,
        speech: &Path,
    ) -> anyhow::Result<Self> {
        let page = std::fs::canonicalize("benches/chromium/callee.html")
            .context("benches/chromium/callee.html (run the bench from the repository)")?;
        let url = format!(
            "file://{}?server={server}&user={USER}&sig={}",
            page.display(),
            sign_user_sig(SECRET, USER)
        );
        let profile =
            std::env::temp_dir().join(format!("callscope-chromium-{}", std::process::id()));
        std::fs::create_dir_all(&profile)?;
        let mut child = Command::new(binary)
            .args(FLAGS)
            .arg(format!(
                "--use-file-for-fake-video-capture={}",
                camera.display()
            ))
            .arg(format!(
                "--use-file-for-fake-audio-capture={}",
                speech.display()
            ))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so every process it starts goes with it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        // A line a second during calls: room for hours of them between two reads.
        let (sender, lines) = crossbeam_channel::bounded(CONSOLE_LINES);
        let stderr = child.stderr.take().context("chromium's stderr")?;
        std::thread::Builder::new()
            .name("chromium-console".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(line) = page_line(&line)
                        && sender.send(line).is_err()
                    {
                        break;
                    }
                }
            })?;
        let chromium = Self {
            child,
            profile,
            lines,
            version: version(binary),
        };
        chromium.wait_for("logged in", START_WAIT)?;
        Ok(chromium)
    }

    /// Waits until the page says something starting with `state` (its errors end the wait),
    /// and returns the statistics it printed meanwhile.
    pub(super) fn wait_for(
        &self,
        state: &str,
        within: Duration,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let deadline = Instant::now() + within;
        let mut printed = Vec::new();
        loop {
            match self.lines.recv_deadline(deadline) {
                Ok(PageLine::State(text)) if text.starts_with(state) => return Ok(printed),
                Ok(PageLine::State(text)) if text.starts_with("error") => {
                    bail!("the Chromium page: {text}")
                }
                Ok(PageLine::State(_)) => {}
                Ok(PageLine::Stats(line)) => printed.push(line),
                Err(_) => bail!("the Chromium page did not say {state:?} within {within:?}"),
            }
        }
    }

    /// The statistics of the call `call_id`: those printed until the page said it ended, and
    /// its last line, printed right after.
    pub(super) fn stats_of(&self, call_id: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut lines = self.wait_for("ended", Duration::from_secs(10))?;
        if let Ok(PageLine::Stats(last)) = self.lines.recv_timeout(Duration::from_secs(2)) {
            lines.push(last);
        }
        lines.retain(|line| line["call_id"] == call_id);
        Ok(lines)
    }

    /// Forgets what the page printed so far.
    pub(super) fn clear(&self) {
        self.lines.try_iter().for_each(drop);
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The whole process group: the browser, its renderers and its GPU process.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Headless, fake devices fed from files, loopback candidates, console on stderr.
const FLAGS: [&str; 9] = [
    "--headless=new",
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--enable-logging=stderr",
    "--v=0",
    "--mute-audio",
];

/// The page's line in one of Chromium's console lines, which read
/// `[…:INFO:CONSOLE:N] "callscope-stats {…}", source: file:///…`.
fn page_line(line: &str) -> Option<PageLine> {
    let start = line.find("\"callscope-")? + 1;
    let end = line.rfind("\", source:")?;
    let text = line.get(start..end)?;
    if let Some(json) = text.strip_prefix("callscope-stats ") {
        return serde_json::from_str(json).ok().map(PageLine::Stats);
    }
    text.strip_prefix("callscope-state ")
        .map(|state| PageLine::State(state.to_owned()))
}

fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|version| !version.is_empty())
        .unwrap_or_else(|| "Chromium".to_owned())
}

/// Frames per second Chromium decoded, from its cumulative `framesDecoded`.
pub(super) fn frames_per_second(lines: &[serde_json::Value]) -> Vec<f64> {
    per_second(lines, |line| line["video_in"]["framesDecoded"].as_f64())
}

/// Kilobits per second Chromium sent as video, from its cumulative `bytesSent`.
pub(super) fn sent_kbps(lines: &[serde_json::Value]) -> Vec<f64> {
    per_second(lines, |line| line["video_out"]["bytesSent"].as_f64())
        .into_iter()
        .map(|bytes| bytes * 8.0 / 1e3)
        .collect()
}

/// How fast a cumulative count of the page's lines grew, one figure per pair of lines.
fn per_second(
    lines: &[serde_json::Value],
    count: impl Fn(&serde_json::Value) -> Option<f64>,
) -> Vec<f64> {
    lines
        .windows(2)
        .filter_map(|pair| {
            let seconds = pair[1]["t"].as_f64()? - pair[0]["t"].as_f64()?;
            (seconds > 0.0).then_some((count(&pair[1])? - count(&pair[0])?) / seconds)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_give_the_page_s_lines_and_nothing_else() {
        let stats = r#"[1:2:1207/160000.1:INFO:CONSOLE:148] "callscope-stats {"t":1.5,"call_id":"c-1","video_in":{"framesDecoded":30}}", source: file:///x/callee.html (148)"#;
        let Some(PageLine::Stats(value)) = page_line(stats) else {
            panic!("no stats in {stats}");
        };
        assert_eq!(value["video_in"]["framesDecoded"], 30);
        let milestone = r#"[1:2:3:INFO:CONSOLE:20] "callscope-state logged in net-chromium", source: file:///x (20)"#;
        assert!(
            matches!(page_line(milestone), Some(PageLine::State(text)) if text == "logged in net-chromium")
        );
        assert!(page_line("ALSA lib confmisc.c:855: cannot find card '0'").is_none());
        assert!(page_line(r#"[INFO:CONSOLE:1] "callscope-stats {broken", source: x"#).is_none());
    }

    #[test]
    fn rates_come_from_differences_of_cumulative_counts() {
        let lines: Vec<serde_json::Value> = [(1.0, 0, 0), (2.0, 30, 125_000), (4.0, 60, 250_000)]
            .iter()
            .map(|(t, frames, bytes)| {
                serde_json::json!({"t": t, "video_in": {"framesDecoded": frames},
                                   "video_out": {"bytesSent": bytes}})
            })
            .collect();
        assert_eq!(frames_per_second(&lines), vec![30.0, 15.0]);
        assert_eq!(sent_kbps(&lines), vec![1000.0, 500.0]);
    }
}
