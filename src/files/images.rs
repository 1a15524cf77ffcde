//! Pictures: the size read from the header first (a decompression bomb is refused before a pixel
//! is decoded), decoded under memory limits, turned upright by its EXIF orientation, and
//! re-encoded — so the stored original and every variant carry no metadata (EXIF, GPS, ICC).
//! Variants fill their box and are cropped to it from the centre. CPU work: call it from a
//! blocking thread. An animated GIF keeps its first frame; every frame's own size is checked
//! (`gif.rs`), not only the screen its header declares.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// The variants of a purpose, widest first.
pub const PROFILE: &[(u32, u32)] = &[(400, 400), (200, 200), (100, 100), (50, 50)];
pub const BANNER: &[(u32, u32)] = &[(1500, 500), (900, 300), (600, 200), (300, 100)];

#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("the image is {width}×{height}: more than {max} pixels")]
    TooLarge { width: u32, height: u32, max: u64 },
    #[error("the image could not be read: {0}")]
    Unreadable(String),
}

/// An image made ready to store.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// The original, upright and without metadata.
    pub original: Vec<u8>,
    /// `(width, height, bytes)` per variant asked for.
    pub variants: Vec<(u32, u32, Vec<u8>)>,
}

fn unreadable(error: impl std::fmt::Display) -> PictureError {
    PictureError::Unreadable(error.to_string())
}

fn format_of(extension: &str) -> Option<ImageFormat> {
    Some(match extension {
        "png" => ImageFormat::Png,
        "jpg" => ImageFormat::Jpeg,
        "gif" => ImageFormat::Gif,
        "webp" => ImageFormat::WebP,
        "tiff" => ImageFormat::Tiff,
        "bmp" => ImageFormat::Bmp,
        _ => return None,
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, PictureError> {
    // Each encoder takes 8-bit RGB(A): JPEG has no alpha, the rest keep it.
    let image = match format {
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(image.to_rgb8()),
        _ => DynamicImage::ImageRgba8(image.to_rgba8()),
    };
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).map_err(unreadable)?;
    Ok(out.into_inner())
}

/// Decodes `bytes` (of the raster kind `extension`) within the limits and makes the original
/// and each of `sizes`.
pub fn prepare(
    bytes: &[u8],
    extension: &str,
    sizes: &[(u32, u32)],
    max_pixels: u64,
    max_decode_bytes: u64,
) -> Result<Picture, PictureError> {
    let format = format_of(extension).ok_or_else(|| unreadable("not a raster image"))?;
    let reader = || {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut limits = Limits::default();
        limits.max_alloc = Some(max_decode_bytes);
        reader.limits(limits);
        reader
    };
    let too_large = |(width, height): (u32, u32)| {
        (u64::from(width) * u64::from(height) > max_pixels).then_some(PictureError::TooLarge {
            width,
            height,
            max: max_pixels,
        })
    };
    if let Some(error) = too_large(reader().into_dimensions().map_err(unreadable)?) {
        return Err(error);
    }
    // A GIF's size is its logical screen; each frame is decoded at its own size (gif.rs).
    if format == ImageFormat::Gif
        && let Some(error) = super::gif::frame_sizes(bytes)
            .map_err(unreadable)?
            .into_iter()
            .find_map(too_large)
    {
        return Err(error);
    }
    let mut decoder = reader().into_decoder().map_err(unreadable)?;
    let orientation = decoder.orientation().map_err(unreadable)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    image.apply_orientation(orientation);
    let variants = sizes
        .iter()
        .map(|&(w, h)| {
            let resized = image.resize_to_fill(w, h, FilterType::Triangle);
            Ok((w, h, encode(&resized, format)?))
        })
        .collect::<Result<Vec<_>, PictureError>>()?;
    Ok(Picture {
        width: image.width(),
        height: image.height(),
        original: encode(&image, format)?,
        variants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::ImageRgb8(image::RgbImage::new(width, height));
        encode(&image, ImageFormat::Png).unwrap()
    }

    #[test]
    fn variants_fill_their_boxes_and_bombs_are_refused_before_decoding() {
        let picture = prepare(&png(800, 600), "png", PROFILE, 10_000_000, 1 << 28).unwrap();
        assert_eq!((picture.width, picture.height), (800, 600));
        let sizes: Vec<(u32, u32)> = picture.variants.iter().map(|(w, h, _)| (*w, *h)).collect();
        assert_eq!(sizes, PROFILE);
        let first = image::load_from_memory(&picture.variants[0].2).unwrap();
        assert_eq!((first.width(), first.height()), (400, 400));
        // 1200×1000 declared in the header, over a limit of a million: refused, not decoded.
        let big = png(1200, 1000);
        assert!(matches!(
            prepare(&big, "png", PROFILE, 1_000_000, 1 << 28),
            Err(PictureError::TooLarge { .. })
        ));
    }
}
