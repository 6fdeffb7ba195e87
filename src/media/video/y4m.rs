//! `Y4mFile`: a YUV4MPEG2 file played as a camera, in a loop, as Chromium's fake capture plays
//! one: camera-like pictures that are the same every run. 4:2:0 only (what `ffmpeg -f yuv4mpegpipe`
//! writes by default); frames are read one at a time, so a long file costs no memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::media::frame::I420Frame;

/// The largest picture accepted (4K).
const MAX_SIDE: usize = 4_096;
/// The longest header or frame line accepted.
const MAX_LINE: usize = 1_024;

/// An open YUV4MPEG2 file.
#[derive(Debug)]
pub struct Y4mFile {
    path: PathBuf,
    reader: BufReader<File>,
    /// Where the first frame starts, to loop back to.
    first_frame: u64,
    frame: I420Frame,
}

impl Y4mFile {
    /// Opens `path` and reads its first frame, so a file that cannot play is refused now, with
    /// what is wrong with it.
    pub fn open(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let file =
            File::open(path).map_err(|error| format!("{shown} could not be opened: {error}"))?;
        let mut reader = BufReader::new(file);
        let header = read_line(&mut reader)
            .map_err(|error| format!("{shown} is not a YUV4MPEG2 file: {error}"))?;
        let (width, height) =
            parse_header(&header).map_err(|reason| format!("{shown}: {reason}"))?;
        let first_frame = reader
            .stream_position()
            .map_err(|error| format!("{shown}: {error}"))?;
        let mut file = Self {
            path: path.to_owned(),
            reader,
            first_frame,
            frame: I420Frame::black(width, height),
        };
        file.read_frame()
            .map_err(|reason| format!("{shown} has no whole frame: {reason}"))?;
        file.rewind()?;
        Ok(file)
    }

    /// The picture size.
    pub fn size(&self) -> (usize, usize) {
        (self.frame.width, self.frame.height)
    }

    /// Reads the next frame; after the last, the first again. An error if the file went bad.
    pub fn next_frame(&mut self) -> Result<(), String> {
        if self.read_frame().is_err() {
            // The end (or a last frame cut short): loop.
            self.rewind()?;
            self.read_frame()
                .map_err(|reason| format!("{}: {reason}", self.path.display()))?;
        }
        Ok(())
    }

    /// The frame read last.
    pub fn frame(&self) -> &I420Frame {
        &self.frame
    }

    fn rewind(&mut self) -> Result<(), String> {
        self.reader
            .seek(SeekFrom::Start(self.first_frame))
            .map(|_| ())
            .map_err(|error| format!("{}: {error}", self.path.display()))
    }

    fn read_frame(&mut self) -> Result<(), String> {
        let line = read_line(&mut self.reader)?;
        if !line.starts_with("FRAME") {
            return Err(format!("a frame starts {:?}, not FRAME", clip(&line)));
        }
        for plane in [&mut self.frame.y, &mut self.frame.u, &mut self.frame.v] {
            self.reader
                .read_exact(plane)
                .map_err(|error| format!("a frame is cut short: {error}"))?;
        }
        Ok(())
    }
}

/// One line up to its newline (without it); an error at the end of the file or for a line
/// longer than [`MAX_LINE`].
fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = Vec::new();
    reader
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .map_err(|error| error.to_string())?;
    if line.pop() != Some(b'\n') {
        return Err(if line.is_empty() {
            "the file ends".to_owned()
        } else {
            "a line runs on without end".to_owned()
        });
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn clip(text: &str) -> String {
    text.chars().take(24).collect()
}

/// The picture size a header gives, if it is one this reader plays.
fn parse_header(header: &str) -> Result<(usize, usize), String> {
    let mut words = header.split(' ');
    if words.next() != Some("YUV4MPEG2") {
        return Err(format!(
            "not a YUV4MPEG2 file (it starts {:?})",
            clip(header)
        ));
    }
    let (mut width, mut height) = (None, None);
    for word in words {
        let (tag, value) = word.split_at(word.len().min(1));
        match tag {
            "W" => width = value.parse::<usize>().ok(),
            "H" => height = value.parse::<usize>().ok(),
            "C" if !matches!(value, "420" | "420jpeg" | "420paldv" | "420mpeg2") => {
                return Err(format!("colour space C{value} is not 8-bit 4:2:0"));
            }
            "I" if !matches!(value, "p" | "?") => {
                return Err(format!(
                    "interlacing I{value}: only progressive frames play"
                ));
            }
            _ => {}
        }
    }
    let (Some(width), Some(height)) = (width, height) else {
        return Err("the header gives no W and H".to_owned());
    };
    let even = |side: usize| (16..=MAX_SIDE).contains(&side) && side.is_multiple_of(2);
    if !even(width) || !even(height) {
        return Err(format!(
            "{width}x{height}: sides must be even, 16 to {MAX_SIDE}"
        ));
    }
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A file of `frames` 32x16 frames, frame `n`'s luma all `n`; `cut` bytes off the end.
    fn y4m(header: &str, frames: u8, cut: usize) -> tempfile::NamedTempFile {
        let mut bytes = format!("{header}\n").into_bytes();
        for number in 0..frames {
            bytes.extend_from_slice(b"FRAME\n");
            bytes.extend(std::iter::repeat_n(number, 32 * 16));
            bytes.extend(std::iter::repeat_n(128, 2 * 16 * 8));
        }
        bytes.truncate(bytes.len() - cut);
        let mut file = tempfile::NamedTempFile::new().expect("a file");
        file.write_all(&bytes).expect("written");
        file
    }

    const HEADER: &str = "YUV4MPEG2 W32 H16 F30:1 Ip A1:1 C420jpeg XYSCSS=420JPEG";

    #[test]
    fn frames_play_in_order_and_loop() {
        let file = y4m(HEADER, 3, 0);
        let mut video = Y4mFile::open(file.path()).expect("a file that plays");
        assert_eq!(video.size(), (32, 16));
        let lumas: Vec<u8> = (0..7)
            .map(|_| {
                video.next_frame().expect("a frame");
                video.frame().y[0]
            })
            .collect();
        assert_eq!(lumas, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn a_last_frame_cut_short_is_skipped_and_the_rest_plays() {
        let file = y4m(HEADER, 3, 100);
        let mut video = Y4mFile::open(file.path()).expect("a file that plays");
        let lumas: Vec<u8> = (0..4)
            .map(|_| {
                video.next_frame().expect("a frame");
                video.frame().y[0]
            })
            .collect();
        assert_eq!(lumas, [0, 1, 0, 1]);
    }

    #[test]
    fn a_file_that_cannot_play_says_why() {
        let missing = Y4mFile::open(Path::new("/nonexistent/camera.y4m")).expect_err("refused");
        assert!(missing.contains("could not be opened"), "{missing}");
        let cases = [
            (y4m("RIFF garbage", 1, 0), "not a YUV4MPEG2 file"),
            (y4m("YUV4MPEG2 W32 H16 C444", 1, 0), "is not 8-bit 4:2:0"),
            (y4m("YUV4MPEG2 W32 H16 C420p10", 1, 0), "is not 8-bit 4:2:0"),
            (y4m("YUV4MPEG2 W33 H16", 1, 0), "sides must be even"),
            (y4m("YUV4MPEG2 F30:1", 1, 0), "no W and H"),
            (y4m(HEADER, 1, 10), "has no whole frame"),
            (y4m(HEADER, 0, 0), "has no whole frame"),
        ];
        for (file, expected) in cases {
            let error = Y4mFile::open(file.path()).expect_err("refused");
            assert!(error.contains(expected), "{error:?} for {expected:?}");
        }
        // Binary with no newline at all.
        let mut binary = tempfile::NamedTempFile::new().expect("a file");
        binary.write_all(&[0xFF; 4_096]).expect("written");
        let error = Y4mFile::open(binary.path()).expect_err("refused");
        assert!(error.contains("without end"), "{error}");
    }
}
