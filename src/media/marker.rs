//! The frame marker: a frame counter and capture timestamp drawn into the luma plane as big
//! black and white blocks, which survive H.264 and are read back after decoding, so loss and
//! glass-to-glass latency can be measured end to end (the aiortc peer draws the same marker).

/// Bits in the marker: 12 bytes.
const BITS: usize = 96;
/// Blocks per marker row.
const COLUMNS: usize = 32;
/// First byte of every marker.
const MAGIC: u8 = 0xC5;
/// Luma of a 1 bit and of a 0 bit (the limited range's white and black).
const ONE: u8 = 235;
const ZERO: u8 = 16;
/// A block's mean luma above this reads as 1.
const THRESHOLD: u32 = 125;
/// The capture time keeps the low 48 bits of microseconds since the UNIX epoch.
const TIME_MASK: u64 = (1 << 48) - 1;

/// What a marker carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Frames sent before this one on the stream.
    pub counter: u32,
    /// Capture time, microseconds since the UNIX epoch (low 48 bits).
    pub capture_micros: u64,
}

/// The side of one marker block for a frame `width` pixels wide.
pub fn block_size(width: usize) -> usize {
    ((width / 40) & !1).max(8)
}

/// The region the marker covers: `(x, y, width, height)` in luma pixels.
pub fn area(width: usize) -> (usize, usize, usize, usize) {
    let block = block_size(width);
    (block, block, COLUMNS * block, BITS / COLUMNS * block)
}

/// Microseconds since the UNIX epoch, masked to the marker's 48 bits.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
        & TIME_MASK
}

/// Microseconds from `capture_micros` to `now_micros`, both masked to 48 bits.
pub fn elapsed_micros(capture_micros: u64, now_micros: u64) -> u64 {
    now_micros.wrapping_sub(capture_micros) & TIME_MASK
}

impl Marker {
    fn bytes(self) -> [u8; 12] {
        let mut bytes = [0_u8; 12];
        bytes[0] = MAGIC;
        bytes[1..5].copy_from_slice(&self.counter.to_be_bytes());
        bytes[5..11].copy_from_slice(&(self.capture_micros & TIME_MASK).to_be_bytes()[2..]);
        bytes[11] = bytes[..11].iter().fold(0, |sum, byte| sum ^ byte);
        bytes
    }

    /// Draws the marker into a luma plane (`stride` bytes per row).
    pub fn draw(self, luma: &mut [u8], stride: usize, width: usize, height: usize) {
        let block = block_size(width);
        let bytes = self.bytes();
        for bit in 0..BITS {
            let (x, y) = block_origin(bit, block);
            if x + block > width || y + block > height {
                return;
            }
            let value = if bytes[bit / 8] & (0x80 >> (bit % 8)) == 0 {
                ZERO
            } else {
                ONE
            };
            for row in y..y + block {
                let start = row * stride + x;
                luma[start..start + block].fill(value);
            }
        }
    }

    /// Reads a marker back from a decoded luma plane; `None` if there is none or it is damaged.
    pub fn read(luma: &[u8], stride: usize, width: usize, height: usize) -> Option<Self> {
        let block = block_size(width);
        let mut bytes = [0_u8; 12];
        for bit in 0..BITS {
            let (x, y) = block_origin(bit, block);
            if x + block > width || y + block > height {
                return None;
            }
            let quarter = block / 4;
            let half = block / 2;
            let mut sum = 0_u32;
            for row in y + quarter..y + quarter + half {
                let start = row * stride + x + quarter;
                sum += luma
                    .get(start..start + half)?
                    .iter()
                    .map(|&value| u32::from(value))
                    .sum::<u32>();
            }
            if sum / (half * half) as u32 > THRESHOLD {
                bytes[bit / 8] |= 0x80 >> (bit % 8);
            }
        }
        let checksum = bytes[..11].iter().fold(0, |sum, byte| sum ^ byte);
        if bytes[0] != MAGIC || bytes[11] != checksum {
            return None;
        }
        let mut counter = [0_u8; 4];
        counter.copy_from_slice(&bytes[1..5]);
        let mut time = [0_u8; 8];
        time[2..].copy_from_slice(&bytes[5..11]);
        Some(Self {
            counter: u32::from_be_bytes(counter),
            capture_micros: u64::from_be_bytes(time),
        })
    }
}

fn block_origin(bit: usize, block: usize) -> (usize, usize) {
    (
        block + (bit % COLUMNS) * block,
        block + (bit / COLUMNS) * block,
    )
}
