//! WAV files: 16-bit PCM read into 48 kHz mono (channels averaged, other rates resampled
//! linearly), for the ringtone and a microphone played from a file; and [`WavWriter`], which
//! records what a participant's audio decoded to, so it can be scored.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::SAMPLE_RATE;

/// The largest WAV read (a few minutes of speech).
const MAX_BYTES: u64 = 64 << 20;

/// Decodes a 16-bit PCM WAV into 48 kHz mono samples; what is wrong with it otherwise.
pub fn decode(bytes: &[u8]) -> Result<Vec<i16>, String> {
    if bytes.get(..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err("not a WAV file (no RIFF/WAVE header)".to_owned());
    }
    let (mut format, mut data) = (None, None);
    let mut offset = 12;
    while let Some(header) = bytes.get(offset..offset + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let Some(body) = bytes.get(offset + 8..(offset + 8).saturating_add(size)) else {
            // Past a whole data chunk, what is left is a recording that grew after its header
            // was last written: the samples the header counts play.
            if data.is_some() && format.is_some() {
                break;
            }
            return Err("a chunk runs past the end (the file is cut short)".to_owned());
        };
        match &header[..4] {
            b"fmt " => format = Some(parse_format(body)?),
            b"data" => data = Some(body),
            _ => {}
        }
        offset += 8 + size + size % 2;
    }
    let (rate, channels) = format.ok_or("no format chunk")?;
    let data = data.ok_or("no data chunk")?;
    let mono: Vec<i16> = data
        .chunks_exact(2 * channels)
        .map(|frame| {
            let sum: i32 = frame
                .chunks_exact(2)
                .map(|sample| i32::from(i16::from_le_bytes([sample[0], sample[1]])))
                .sum();
            i16::try_from(sum / i32::try_from(channels).unwrap_or(1)).unwrap_or(0)
        })
        .collect();
    if mono.is_empty() {
        return Err("no samples".to_owned());
    }
    Ok(resample(&mono, rate))
}

/// The sample rate and channels of a `fmt ` chunk, if it is 16-bit PCM.
fn parse_format(body: &[u8]) -> Result<(u32, usize), String> {
    if body.len() < 16 {
        return Err("a format chunk too short".to_owned());
    }
    let tag = u16::from_le_bytes([body[0], body[1]]);
    let channels = usize::from(u16::from_le_bytes([body[2], body[3]]));
    let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    let bits = u16::from_le_bytes([body[14], body[15]]);
    // 1 is PCM; 0xFFFE (extensible) carries PCM too.
    if !matches!(tag, 1 | 0xFFFE) || bits != 16 {
        return Err(format!(
            "format {tag} at {bits} bits a sample: only 16-bit PCM plays"
        ));
    }
    if channels == 0 || !(8_000..=192_000).contains(&rate) {
        return Err(format!("{channels} channels at {rate} Hz"));
    }
    Ok((rate, channels))
}

/// `samples` at `rate` as 48 kHz, by linear interpolation.
fn resample(samples: &[i16], rate: u32) -> Vec<i16> {
    if rate == SAMPLE_RATE {
        return samples.to_vec();
    }
    // Output sample `index` sits at `index * rate / 48000` of the input, in whole and parts.
    let rate = u64::from(rate);
    let out = u64::from(SAMPLE_RATE);
    let length = usize::try_from(samples.len() as u64 * out / rate).unwrap_or(0);
    (0..length as u64)
        .map(|index| {
            let position = index * rate;
            let before = usize::try_from(position / out).unwrap_or(0);
            let after = (before + 1).min(samples.len() - 1);
            let weight = (position % out) as f64 / out as f64;
            let value =
                f64::from(samples[before]) * (1.0 - weight) + f64::from(samples[after]) * weight;
            value as i16
        })
        .collect()
}

/// Reads a WAV file into 48 kHz mono samples; what is wrong with it otherwise.
pub fn load(path: &Path) -> Result<Vec<i16>, String> {
    let shown = path.display();
    let length = std::fs::metadata(path)
        .map_err(|error| format!("{shown} could not be opened: {error}"))?
        .len();
    if length > MAX_BYTES {
        return Err(format!("{shown} is {length} bytes: more than {MAX_BYTES}"));
    }
    let bytes =
        std::fs::read(path).map_err(|error| format!("{shown} could not be read: {error}"))?;
    decode(&bytes).map_err(|reason| format!("{shown}: {reason}"))
}

/// Writes 48 kHz mono 16-bit samples to a WAV file as they come; the sizes in its header are
/// kept right as it grows, so a recording cut off is still a file that plays.
#[derive(Debug)]
pub struct WavWriter {
    file: BufWriter<File>,
    samples: u32,
    /// Samples written since the sizes were last put right.
    unsettled: u32,
}

impl WavWriter {
    /// Creates (or replaces) `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut writer = Self {
            file: BufWriter::new(File::create(path)?),
            samples: 0,
            unsettled: 0,
        };
        writer.header()?;
        Ok(writer)
    }

    fn header(&mut self) -> std::io::Result<()> {
        let data_bytes = self.samples.saturating_mul(2);
        let mut header = Vec::with_capacity(44);
        header.extend_from_slice(b"RIFF");
        header.extend_from_slice(&data_bytes.saturating_add(36).to_le_bytes());
        header.extend_from_slice(b"WAVEfmt ");
        header.extend_from_slice(&16_u32.to_le_bytes());
        header.extend_from_slice(&1_u16.to_le_bytes());
        header.extend_from_slice(&1_u16.to_le_bytes());
        header.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
        header.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
        header.extend_from_slice(&2_u16.to_le_bytes());
        header.extend_from_slice(&16_u16.to_le_bytes());
        header.extend_from_slice(b"data");
        header.extend_from_slice(&data_bytes.to_le_bytes());
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&header)?;
        self.file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    /// Appends `samples`; about once a second the header's sizes are brought up to date.
    pub fn write(&mut self, samples: &[i16]) -> std::io::Result<()> {
        let bytes: Vec<u8> = samples
            .iter()
            .flat_map(|sample| sample.to_le_bytes())
            .collect();
        self.file.write_all(&bytes)?;
        let count = u32::try_from(samples.len()).unwrap_or(u32::MAX);
        self.samples = self.samples.saturating_add(count);
        self.unsettled = self.unsettled.saturating_add(count);
        if self.unsettled >= SAMPLE_RATE {
            self.finish()?;
        }
        Ok(())
    }

    /// Brings the header's sizes up to date and writes everything out.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.unsettled = 0;
        self.header()?;
        self.file.flush()
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        // Dropped at the end of a call: nothing to tell if the disk is gone by then.
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, bits: u16, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut bytes = b"RIFF".to_vec();
        bytes.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16_u32.to_le_bytes());
        bytes.extend_from_slice(&1_u16.to_le_bytes());
        bytes.extend_from_slice(&channels.to_le_bytes());
        bytes.extend_from_slice(&rate.to_le_bytes());
        bytes.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
        bytes.extend_from_slice(&(2 * channels).to_le_bytes());
        bytes.extend_from_slice(&bits.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&data);
        bytes
    }

    #[test]
    fn stereo_at_16_khz_becomes_48_khz_mono() {
        // Left 1000, right 3000, four frames.
        let samples = [1_000, 3_000, 1_000, 3_000, 1_000, 3_000, 1_000, 3_000];
        let mono = decode(&wav(16_000, 2, 16, &samples)).expect("a WAV");
        assert_eq!(mono.len(), 12);
        assert!(mono.iter().all(|&sample| sample == 2_000), "{mono:?}");
    }

    #[test]
    fn what_is_written_reads_back_and_a_file_cut_off_still_plays() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("bob.wav");
        let tone: Vec<i16> = (0..96_000)
            .map(|index| (index % 200) as i16 * 100)
            .collect();
        {
            let mut writer = WavWriter::create(&path).expect("created");
            writer.write(&tone[..50_000]).expect("written");
            // Cut off here: the header says what was settled a second in.
            let settled = load(&path).expect("it plays already");
            assert_eq!(settled.len(), 50_000);
            writer.write(&tone[50_000..]).expect("written");
        }
        assert_eq!(load(&path).expect("it plays"), tone);
    }

    #[test]
    fn samples_beyond_what_the_header_counts_are_left_out() {
        let mut grown = wav(48_000, 1, 16, &[1, 2, 3, 4]);
        grown.extend_from_slice(&[7, 0, 9, 0, 11]);
        assert_eq!(decode(&grown).expect("a WAV"), [1, 2, 3, 4]);
    }

    #[test]
    fn a_file_that_cannot_play_says_why() {
        let good = wav(48_000, 1, 16, &[1, 2, 3, 4]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not a wav at all".to_vec(), "no RIFF/WAVE header"),
            (good[..good.len() - 3].to_vec(), "cut short"),
            (wav(48_000, 1, 8, &[1, 2]), "only 16-bit PCM"),
            (wav(48_000, 1, 16, &[]), "no samples"),
            (good[..36].to_vec(), "no data chunk"),
        ];
        for (bytes, expected) in cases {
            let error = decode(&bytes).expect_err("refused");
            assert!(error.contains(expected), "{error:?} for {expected:?}");
        }
        let missing = load(Path::new("/nonexistent/speech.wav")).expect_err("refused");
        assert!(missing.contains("could not be opened"), "{missing}");
    }
}
