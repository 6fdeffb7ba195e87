//! RTP sequence numbers unwrapped into a count that does not wrap, and the one a resend on a
//! retransmission stream carries.

/// `sequence_number` as the unwrapped number nearest `reference` (an unwrapped number of the
/// same stream). A stream's first number, with no reference yet, is put one wrap up, so the
/// numbers just before it (a reordered packet) stay above zero.
pub fn unwrap_near(reference: Option<u64>, sequence_number: u16) -> u64 {
    let Some(reference) = reference else {
        return u64::from(sequence_number) + (1 << 16);
    };
    let delta = i64::from(sequence_number.wrapping_sub(reference as u16).cast_signed());
    reference.saturating_add_signed(delta)
}

/// The sequence number a packet of a retransmission stream (RFC 4588 §4) carries in its
/// payload's first two bytes: that of the packet it repeats. `None` for padding alone.
pub fn repeated_sequence_number(payload: &[u8]) -> Option<u16> {
    let original = payload.get(..2)?;
    Some(u16::from_be_bytes([original[0], original[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_unwrap_across_the_wrap_both_ways() {
        let first = unwrap_near(None, 65_535);
        assert_eq!(first, 65_535 + 65_536);
        assert_eq!(unwrap_near(Some(first), 0), first + 1);
        assert_eq!(unwrap_near(Some(first), 65_530), first - 5);
        assert_eq!(unwrap_near(Some(first + 1), 65_535), first);
    }
}
