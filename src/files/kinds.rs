//! What a file is, decided by its bytes (magic numbers, through `infer`), never by its name or
//! the content type the client sent. The original's list: txt, pdf, doc(x), xls(x), ppt(x),
//! heic/heif, png, jpg, gif, webp, tiff, bmp — and svg for profile and banner images only.
//! `infer` has no matcher for plain text or SVG: bytes it does not know that are valid UTF-8
//! without control characters are text, and text whose root element is `<svg` is SVG.

/// A kind of file this server takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub content_type: &'static str,
    pub extension: &'static str,
    /// Decoded, oriented, stripped and resized (PNG, JPEG, GIF, WebP, TIFF, BMP).
    pub raster: bool,
    /// An image at all (what a profile or banner must be).
    pub image: bool,
}

const fn kind(
    content_type: &'static str,
    extension: &'static str,
    raster: bool,
    image: bool,
) -> Kind {
    Kind {
        content_type,
        extension,
        raster,
        image,
    }
}

const KINDS: &[Kind] = &[
    kind("image/png", "png", true, true),
    kind("image/jpeg", "jpg", true, true),
    kind("image/gif", "gif", true, true),
    kind("image/webp", "webp", true, true),
    kind("image/tiff", "tiff", true, true),
    kind("image/bmp", "bmp", true, true),
    kind("image/heif", "heic", false, true),
    kind("image/heic", "heic", false, true),
    kind("application/pdf", "pdf", false, false),
    kind("application/msword", "doc", false, false),
    kind(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
        false,
        false,
    ),
    kind("application/vnd.ms-excel", "xls", false, false),
    kind(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
        false,
        false,
    ),
    kind("application/vnd.ms-powerpoint", "ppt", false, false),
    kind(
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptx",
        false,
        false,
    ),
];

pub const TEXT: Kind = kind("text/plain; charset=utf-8", "txt", false, false);
pub const SVG: Kind = kind("image/svg+xml", "svg", false, true);

/// The kind of `bytes`, or `None` for a kind this server does not take.
pub fn sniff(bytes: &[u8]) -> Option<Kind> {
    if let Some(found) = infer::get(bytes) {
        let mime = found.mime_type();
        if let Some(kind) = KINDS.iter().find(|k| k.content_type == mime) {
            return Some(*kind);
        }
        // XML and HTML are text to `infer` too: they are judged below (SVG, or plain text,
        // which is served as text/plain and never rendered).
        if !(mime.starts_with("text/") || mime.ends_with("xml")) {
            return None;
        }
    }
    let text = std::str::from_utf8(bytes).ok()?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return None;
    }
    if is_svg(text) {
        return Some(SVG);
    }
    Some(TEXT)
}

/// Whether the document's root element is `<svg` (after an XML declaration, comments and a
/// doctype).
fn is_svg(text: &str) -> bool {
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?") {
            rest = after.split_once("?>").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("<!") {
            rest = after.split_once('>').map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.starts_with("<svg") && rest[4..].starts_with(|c: char| c.is_whitespace() || c == '>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_bytes() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
        ];
        assert_eq!(sniff(&png).map(|k| k.extension), Some("png"));
        assert_eq!(sniff(b"%PDF-1.7\n").map(|k| k.extension), Some("pdf"));
        assert_eq!(sniff(b"hello\nworld").map(|k| k.extension), Some("txt"));
        assert_eq!(
            sniff(
                b"<?xml version=\"1.0\"?>\n<!-- x --><svg xmlns=\"http://www.w3.org/2000/svg\"/>"
            )
            .map(|k| k.extension),
            Some("svg")
        );
        assert_eq!(sniff(b"<svgx>").map(|k| k.extension), Some("txt"));
        // An executable, and binary junk, are not taken.
        assert_eq!(sniff(b"MZ\x90\x00\x03\x00\x00\x00"), None);
        assert_eq!(sniff(&[0u8, 1, 2, 3, 0xff]), None);
    }
}
