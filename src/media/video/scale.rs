//! Scales an I420 frame down to a rung's size: each output pixel is the mean of the source
//! pixels it covers (an area filter, which does not alias the way dropping pixels does).

use crate::media::frame::I420Frame;

/// Scales `source` into `into`, whose size says the output's; a frame of the same size is
/// copied.
pub fn scale_into(source: &I420Frame, into: &mut I420Frame) {
    let (width, height) = (into.width, into.height);
    scale_plane(
        &source.y,
        (source.width, source.height),
        &mut into.y,
        (width, height),
    );
    let source_chroma = (source.width / 2, source.height / 2);
    let chroma = (width / 2, height / 2);
    scale_plane(&source.u, source_chroma, &mut into.u, chroma);
    scale_plane(&source.v, source_chroma, &mut into.v, chroma);
}

/// One plane: `from` is `(width, height)` of `source`, `to` of `into`.
fn scale_plane(source: &[u8], from: (usize, usize), into: &mut [u8], to: (usize, usize)) {
    let ((source_width, source_height), (width, height)) = (from, to);
    if from == to {
        into.copy_from_slice(&source[..width * height]);
        return;
    }
    if width == 0 || height == 0 || source_width == 0 || source_height == 0 {
        return;
    }
    // The source columns each output column covers, computed once.
    let columns: Vec<(usize, usize)> = (0..width).map(|x| span(x, width, source_width)).collect();
    for y in 0..height {
        let (top, bottom) = span(y, height, source_height);
        let row = &mut into[y * width..(y + 1) * width];
        for (out, &(left, right)) in row.iter_mut().zip(&columns) {
            let mut sum = 0_u32;
            for line in top..bottom {
                let start = line * source_width;
                sum += source[start + left..start + right]
                    .iter()
                    .map(|&pixel| u32::from(pixel))
                    .sum::<u32>();
            }
            let count = ((bottom - top) * (right - left)) as u32;
            *out = (sum / count.max(1)) as u8;
        }
    }
}

/// The source range output index `index` of `outputs` covers among `inputs` (never empty).
fn span(index: usize, outputs: usize, inputs: usize) -> (usize, usize) {
    let start = index * inputs / outputs;
    let end = ((index + 1) * inputs / outputs).max(start + 1).min(inputs);
    (start.min(inputs - 1), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_each_two_by_two_block() {
        let mut source = I420Frame::black(4, 4);
        source.y = vec![0, 100, 20, 20, 50, 250, 40, 60, 0, 0, 0, 0, 0, 0, 0, 4];
        let mut into = I420Frame::black(2, 2);
        scale_into(&source, &mut into);
        assert_eq!(into.y, vec![100, 35, 0, 1]);
        assert_eq!(into.u, vec![128]);
    }

    #[test]
    fn a_frame_of_the_same_size_is_copied_and_odd_ratios_cover_every_source_pixel() {
        let mut source = I420Frame::black(640, 480);
        source.y.iter_mut().enumerate().for_each(|(index, pixel)| {
            *pixel = (index % 251) as u8;
        });
        let mut same = I420Frame::black(640, 480);
        scale_into(&source, &mut same);
        assert_eq!(same.y, source.y);
        // 640 → 424 columns: every output takes one or two source columns.
        let mut smaller = I420Frame::black(424, 240);
        scale_into(&source, &mut smaller);
        let spans: Vec<_> = (0..424).map(|x| span(x, 424, 640)).collect();
        assert_eq!(spans.first().map(|s| s.0), Some(0));
        assert_eq!(spans.last().map(|s| s.1), Some(640));
        assert!(spans.windows(2).all(|pair| pair[0].1 == pair[1].0));
    }
}
