//! The frames of a GIF, read from its blocks without decoding a pixel: each image descriptor's
//! width and height. A GIF's logical screen (what the decoder reports as its size) says nothing
//! of its frames: a 1×1 screen may hold a 10000×10000 frame, which the decoder allocates
//! whole. So `images::prepare` checks every frame against `storage.max_image_pixels` first.
//!
//! ```text
//! "GIF87a"|"GIF89a" · logical screen (7 bytes; a global colour table if its flag is set)
//! then blocks: 0x21 extension (label, sub-blocks) · 0x2C image (descriptor of 9 bytes: left,
//! top, width, height, flags; a local colour table; LZW code size; sub-blocks) · 0x3B the end
//! ```

/// Every frame's `(width, height)`, in order. A file cut short ends the list (a descriptor
/// that is not whole cannot be decoded); a block that is no GIF block is an error.
pub fn frame_sizes(bytes: &[u8]) -> Result<Vec<(u32, u32)>, String> {
    let header = bytes.get(..13).ok_or("not a whole GIF header")?;
    if !header.starts_with(b"GIF87a") && !header.starts_with(b"GIF89a") {
        return Err("not a GIF".into());
    }
    let mut at = 13 + colour_table(header[10]);
    let mut frames = Vec::new();
    loop {
        match bytes.get(at) {
            None | Some(0x3b) => return Ok(frames),
            Some(0x21) => match skip_sub_blocks(bytes, at + 2) {
                Some(next) => at = next,
                None => return Ok(frames),
            },
            Some(0x2c) => {
                let Some(d) = bytes.get(at + 1..at + 10) else {
                    return Ok(frames);
                };
                let width = u16::from_le_bytes([d[4], d[5]]);
                let height = u16::from_le_bytes([d[6], d[7]]);
                frames.push((u32::from(width), u32::from(height)));
                // The descriptor, its colour table, the LZW code size, then the data.
                match skip_sub_blocks(bytes, at + 10 + colour_table(d[8]) + 1) {
                    Some(next) => at = next,
                    None => return Ok(frames),
                }
            }
            Some(other) => return Err(format!("no GIF block starts with 0x{other:02x}")),
        }
    }
}

/// The bytes of the colour table a screen's or an image's flags declare.
fn colour_table(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 7) + 1)
    }
}

/// Where the data after the sub-blocks starting at `at` begins; `None` if they are cut short.
fn skip_sub_blocks(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let size = usize::from(*bytes.get(at)?);
        at += 1;
        if size == 0 {
            return Some(at);
        }
        at += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_is_found_past_extensions_and_colour_tables() {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 1, 1, 1]);
        // A graphic control extension, then a 3×2 frame with a local table of 4 colours.
        gif.extend_from_slice(&[0x21, 0xf9, 4, 0, 0, 0, 0, 0]);
        gif.extend_from_slice(&[0x2c, 0, 0, 0, 0, 3, 0, 2, 0, 0x81]);
        gif.extend_from_slice(&[0; 12]);
        gif.extend_from_slice(&[2, 2, 0x44, 0x01, 0]);
        // A second frame, 10000×10000, and the end.
        gif.extend_from_slice(&[
            0x2c, 0, 0, 0, 0, 0x10, 0x27, 0x10, 0x27, 0, 2, 1, 0, 0, 0x3b,
        ]);
        assert_eq!(frame_sizes(&gif).unwrap(), vec![(3, 2), (10000, 10000)]);
        // Cut inside the second frame's data: both descriptors were read.
        assert_eq!(frame_sizes(&gif[..gif.len() - 3]).unwrap().len(), 2);
        assert!(frame_sizes(b"PNG").is_err());
        // After the header and its global table of two colours, a byte no block starts with.
        let mut junk = gif[..19].to_vec();
        junk.push(0x99);
        assert!(frame_sizes(&junk).is_err());
    }
}
