//! What an H.264 RTP packet (RFC 6184) says of the picture it starts: whether it is a key
//! frame, whether later pictures may refer to it, and its `frame_num` (whose width the sequence
//! parameter set gives). With these a receiver tells a gap that took nothing a later picture
//! needs (a sender's padding, a picture nobody refers to) from one that broke the chain of
//! references, and decodes on across the first without waiting or asking for a key frame.
//! Sans-IO, and it reads only the first bytes of a slice header.

/// NAL unit types (H.264 table 7-1) and RTP payload structures (RFC 6184).
const SLICE: u8 = 1;
const IDR_SLICE: u8 = 5;
const SEI: u8 = 6;
const SPS: u8 = 7;
const PPS: u8 = 8;
const DELIMITER: u8 = 9;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;
/// The bytes of a slice header or parameter set read at most (after emulation prevention).
const HEADER_BYTES: usize = 24;

/// The start of a picture, as its first packet tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureStart {
    /// Parameter sets, which lead an IDR picture: it refers to nothing before it.
    pub key: bool,
    /// Later pictures may refer to it (`nal_ref_idc` is not 0).
    pub reference: bool,
    /// Its first slice's `frame_num`, when the slice header is in the packet and the number's
    /// width is known.
    pub frame_num: Option<u32>,
}

/// The chain of reference pictures handed to the decoder, and the width of their numbers.
#[derive(Debug, Default)]
pub struct PictureChain {
    /// log2(MaxFrameNum), from the last sequence parameter set seen.
    frame_num_bits: Option<u32>,
    /// The `frame_num` of the last reference picture handed on, while the chain is whole.
    last_reference: Option<u32>,
}

impl PictureChain {
    /// Learns the frame number's width from a sequence parameter set in `payload`, if any.
    pub fn learn(&mut self, payload: &[u8]) {
        if let Some(sps) = nal_units(payload).find(|nal| nal_type(nal) == Some(SPS)) {
            self.frame_num_bits = frame_num_bits(&sps[1..]);
        }
    }

    /// The picture `payload` starts, if it starts one that can be read.
    pub fn start_of(&self, payload: &[u8]) -> Option<PictureStart> {
        let (header, body) = first_nal(payload)?;
        let reference = header & 0x60 != 0;
        match header & 0x1F {
            // Parameter sets lead an IDR picture, whose number is 0.
            SPS | PPS => Some(PictureStart {
                key: true,
                reference: true,
                frame_num: Some(0),
            }),
            SLICE | IDR_SLICE => {
                let mut bits = BitReader::new(body);
                // `first_mb_in_slice`: a picture's first slice starts at macroblock 0.
                if bits.exp_golomb()? != 0 {
                    return None;
                }
                let _slice_type = bits.exp_golomb()?;
                let _pps_id = bits.exp_golomb()?;
                let frame_num = self.frame_num_bits.and_then(|width| bits.read(width));
                // An IDR slice counts as a key frame only after its parameter sets (which
                // start the picture): a gap right before it may have taken new ones.
                Some(PictureStart {
                    key: false,
                    reference,
                    frame_num,
                })
            }
            _ => None,
        }
    }

    /// Whether `start` follows the last reference picture handed on, with none missing.
    pub fn continues(&self, start: &PictureStart) -> bool {
        if start.key {
            return true;
        }
        match (start.frame_num, self.last_reference, self.frame_num_bits) {
            (Some(number), Some(last), Some(width)) => number == (last + 1) & ((1 << width) - 1),
            _ => false,
        }
    }

    /// The picture that began with `start` went to the decoder (`None`: its start was not
    /// read, so the chain is not known until the next key frame).
    pub fn handed_on(&mut self, start: Option<&PictureStart>) {
        match start {
            Some(start) if start.reference => self.last_reference = start.frame_num,
            Some(_) => {}
            None => self.last_reference = None,
        }
    }

    /// A picture was lost: nothing but a key frame continues the chain.
    pub fn broken(&mut self) {
        self.last_reference = None;
    }
}

fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|header| header & 0x1F)
}

/// The NAL header and the start of the body of the first NAL unit that begins in `payload`
/// and matters to a picture's start (access-unit delimiters and SEI are passed over).
fn first_nal(payload: &[u8]) -> Option<(u8, &[u8])> {
    let (&indicator, rest) = payload.split_first()?;
    if indicator & 0x1F == FU_A {
        let (&fu_header, body) = rest.split_first()?;
        // Only the fragment that starts the unit has its header.
        let starts = fu_header & 0x80 != 0;
        return starts.then_some(((indicator & 0xE0) | (fu_header & 0x1F), body));
    }
    nal_units(payload)
        .find(|nal| !matches!(nal_type(nal), Some(SEI | DELIMITER)))
        .and_then(|nal| nal.split_first().map(|(&header, body)| (header, body)))
}

/// The whole NAL units in `payload`: itself, or those an aggregation packet carries.
fn nal_units(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut single = None;
    let mut aggregated = &[][..];
    match nal_type(payload) {
        Some(STAP_A) => aggregated = &payload[1..],
        Some(FU_A) | None => {}
        Some(_) => single = Some(payload),
    }
    single.into_iter().chain(std::iter::from_fn(move || {
        let (size, rest) = aggregated.split_first_chunk::<2>()?;
        let size = usize::from(u16::from_be_bytes(*size));
        let nal = rest.get(..size)?;
        aggregated = &rest[size..];
        Some(nal)
    }))
}

/// log2(MaxFrameNum) from a sequence parameter set's body (after its NAL header), for the
/// profiles whose sets carry no scaling lists before it.
fn frame_num_bits(body: &[u8]) -> Option<u32> {
    let mut bits = BitReader::new(body);
    let profile = bits.read(8)?;
    let _constraints_and_level = bits.read(16)?;
    let _sps_id = bits.exp_golomb()?;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        if bits.exp_golomb()? == 3 {
            let _separate_colour_planes = bits.read(1)?;
        }
        let _bit_depths = (bits.exp_golomb()?, bits.exp_golomb()?);
        let _transform_bypass = bits.read(1)?;
        if bits.read(1)? == 1 {
            // Scaling lists: not read; the width stays unknown.
            return None;
        }
    }
    let minus_four = bits.exp_golomb()?;
    (minus_four <= 12).then_some(minus_four + 4)
}

/// Reads bits, most significant first, from the start of a NAL unit's body with emulation
/// prevention bytes (`00 00 03`) taken out.
struct BitReader {
    bytes: Vec<u8>,
    position: usize,
}

impl BitReader {
    fn new(body: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(HEADER_BYTES);
        let mut zeros = 0;
        for &byte in body {
            if bytes.len() == HEADER_BYTES {
                break;
            }
            if zeros >= 2 && byte == 3 {
                zeros = 0;
                continue;
            }
            zeros = if byte == 0 { zeros + 1 } else { 0 };
            bytes.push(byte);
        }
        Self { bytes, position: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = self.bytes.get(self.position / 8)?;
        let bit = (byte >> (7 - self.position % 8)) & 1;
        self.position += 1;
        Some(u32::from(bit))
    }

    /// `count` bits (at most 32) as a number.
    fn read(&mut self, count: u32) -> Option<u32> {
        (0..count).try_fold(0_u32, |value, _| Some(value << 1 | self.bit()?))
    }

    /// An unsigned Exp-Golomb number, `ue(v)`.
    fn exp_golomb(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1 << zeros) - 1 + self.read(zeros)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Resolution;
    use crate::media::pattern::TestPattern;
    use crate::media::video::encoder::VideoEncoder;
    use rtc::rtp::codec::h264::H264Payloader;
    use rtc::rtp::packetizer::Payloader as _;

    /// The RTP payloads of `count` pictures from OpenH264, the first a key frame.
    fn pictures(count: usize) -> Vec<Vec<bytes::Bytes>> {
        let mut encoder = VideoEncoder::new(Resolution::P480, 30).expect("an encoder");
        let mut pattern = TestPattern::new(640, 480, "chain");
        let mut payloader = H264Payloader::default();
        (0..count)
            .map(|index| {
                let frame = pattern.next_frame(index as u64 * 33_333);
                let unit = encoder.encode(frame, index == 0).expect("encoded").to_vec();
                payloader
                    .payload(1_200, &bytes::Bytes::from(unit))
                    .expect("packetized")
            })
            .collect()
    }

    #[test]
    fn an_encoder_s_pictures_are_read_and_chained_one_after_another() {
        let mut chain = PictureChain::default();
        let mut numbers = Vec::new();
        for (index, packets) in pictures(6).iter().enumerate() {
            for packet in packets {
                chain.learn(packet);
            }
            let start = chain
                .start_of(&packets[0])
                .expect("the first packet starts it");
            assert_eq!(start.key, index == 0);
            assert!(chain.continues(&start), "picture {index}: {start:?}");
            // Later packets of a picture do not start one (but the key frame's IDR slice, after
            // its parameter sets, reads as picture 0, and not as a key frame).
            for packet in &packets[1..] {
                let later = chain.start_of(packet);
                assert!(later.is_none_or(|later| index == 0 && later.frame_num == Some(0)));
                assert!(later.is_none_or(|later| !later.key));
            }
            chain.handed_on(Some(&start));
            numbers.push(start.frame_num);
        }
        // An IDR is picture 0; each reference picture after it counts on.
        assert_eq!(numbers[1..], [Some(1), Some(2), Some(3), Some(4), Some(5)]);
    }

    #[test]
    fn a_missing_reference_picture_breaks_the_chain_until_a_key_frame() {
        let pictures = pictures(4);
        let mut chain = PictureChain::default();
        for packets in &pictures[..2] {
            for packet in packets {
                chain.learn(packet);
            }
            let start = chain.start_of(&packets[0]);
            chain.handed_on(start.as_ref());
        }
        // Picture 2 never came: picture 3 does not follow picture 1.
        let third = chain.start_of(&pictures[3][0]).expect("a start");
        assert!(!chain.continues(&third));
        chain.broken();
        let key = chain.start_of(&pictures[0][0]).expect("a start");
        assert!(chain.continues(&key));
        // Without a known chain, nothing but a key frame continues it.
        let second = chain.start_of(&pictures[1][0]).expect("a start");
        assert!(!chain.continues(&second));
    }

    #[test]
    fn headers_are_read_from_single_aggregated_and_fragmented_packets() {
        let mut chain = PictureChain::default();
        // SPS (baseline, log2_max_frame_num_minus4 = 0) and PPS aggregated (STAP-A).
        let sps = [0x67, 0x42, 0xC0, 0x1E, 0b1100_0000];
        let mut stap = vec![0x78, 0, 5];
        stap.extend_from_slice(&sps);
        stap.extend_from_slice(&[0, 2, 0x68, 0xCE]);
        chain.learn(&stap);
        assert!(chain.start_of(&stap).is_some_and(|start| start.key));
        // A slice: first_mb 0 (1), P (011), pps 0 (1), frame_num 0101 in four bits.
        let slice = [0x41, 0b1011_1010, 0b1000_0000];
        let start = chain.start_of(&slice).expect("a start");
        assert_eq!(start.frame_num, Some(5));
        assert!(start.reference);
        // The same slice fragmented: its first fragment starts it, the others do not.
        let first = [0x5C, 0x81, 0b1011_1010, 0b1000_0000];
        assert_eq!(chain.start_of(&first), Some(start));
        assert_eq!(chain.start_of(&[0x5C, 0x01, 0xAA]), None);
        // A slice that does not begin at macroblock 0 continues a picture.
        assert_eq!(chain.start_of(&[0x41, 0b0100_0000]), None);
        // A non-reference picture (nal_ref_idc 0).
        assert!(
            !chain
                .start_of(&[0x01, 0b1011_1010, 0b1000_0000])
                .expect("a start")
                .reference
        );
        // Garbage and padding are no picture starts, and do not panic.
        for junk in [
            &[][..],
            &[0x7C],
            &[0x78, 0xFF],
            &[0x41],
            &[0x41, 0, 0, 0, 0],
        ] {
            assert_eq!(chain.start_of(junk), None, "{junk:?}");
        }
    }
}
