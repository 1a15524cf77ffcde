//! Uploads on local storage (here) and on a real S3-compatible server (`s3.rs`): kinds
//! decided by the bytes, image variants, EXIF orientation applied and metadata dropped, a
//! decompression bomb refused, access to attachments following the chat, profiles naming their
//! images, the size limit, and orphans deleted.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chat::create_chat;
use crate::helpers::{Reply, SendReply, TestApp, spawn_app_with, wait_until};
use crate::ws::{User, user};

mod s3;

/// A form's fields: name and value.
type Fields<'a> = [(&'a str, &'a [u8])];

const BOUNDARY: &str = "vrooli-test-boundary-7MA4YWxkTrZu0gW";

/// A multipart body as a browser's form makes it.
fn form(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        if *name == "file" {
            body.extend_from_slice(
                b"Content-Disposition: form-data; name=\"file\"; filename=\"upload.bin\"\r\n\
                  Content-Type: application/octet-stream\r\n\r\n",
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub(crate) async fn upload(app: &TestApp, who: &User, fields: &[(&str, &[u8])]) -> Reply {
    app.client
        .post(app.url("/api/v2/file"))
        .header("cookie", format!("{}={}", crate::auth::COOKIE, who.token))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form(fields))
        .reply()
        .await
}

async fn put_profile(app: &TestApp, who: &User, body: Value) -> Reply {
    crate::chat::api(app, reqwest::Method::PUT, "/profile", Some(who), Some(body)).await
}

fn code(reply: &Reply) -> Value {
    reply.body["errors"][0]["code"].clone()
}

/// Fetches `path` (a file's url) as `who` (or nobody), not following redirects.
async fn fetch(app: &TestApp, path: &str, who: Option<&User>) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.get(app.url(path));
    if let Some(who) = who {
        request = request.header("cookie", format!("{}={}", crate::auth::COOKIE, who.token));
    }
    request.send().await.unwrap()
}

pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        width,
        height,
        image::Rgb([200, 40, 40]),
    ));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A JPEG of `width`×`height` carrying an EXIF block that says "rotate 90° clockwise"
/// (orientation 6), as a phone held upright writes it.
fn rotated_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::DynamicImage::ImageRgb8(image::RgbImage::new(width, height));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    let jpeg = out.into_inner();
    // APP1: "Exif\0\0", a little-endian TIFF header, one IFD entry: 0x0112 SHORT 1 = 6.
    let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0];
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let length = (app1.len() + 2) as u16;
    let mut with_exif = vec![0xff, 0xd8, 0xff, 0xe1];
    with_exif.extend_from_slice(&length.to_be_bytes());
    with_exif.extend_from_slice(&app1);
    with_exif.extend_from_slice(&jpeg[2..]);
    with_exif
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A small PNG whose header claims `width`×`height` (with a valid checksum): a bomb's shape.
fn claimed_png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = png(1, 1);
    // The IHDR chunk: its type at 12, width at 16, height at 20, CRC at 29.
    bytes[16..20].copy_from_slice(&width.to_be_bytes());
    bytes[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[tokio::test]
async fn uploads_are_judged_by_their_bytes_resized_and_read_by_those_allowed() {
    let app = spawn_app_with(|s| s.storage.max_file_bytes = 256 * 1024, None).await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;

    // A profile image: stored with its four variants, public.
    let Reply { status, body, .. } = upload(
        &app,
        &sam,
        &[("purpose", b"profile"), ("file", &png(800, 600))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["contentType"], "image/png");
    let sizes: Vec<(u64, u64)> = data["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap()))
        .collect();
    assert_eq!(sizes, [(400, 400), (200, 200), (100, 100), (50, 50)]);
    for variant in data["variants"].as_array().unwrap() {
        let response = fetch(&app, variant["url"].as_str().unwrap(), None).await;
        assert_eq!(response.status(), 200);
        let image = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(
            (u64::from(image.width()), u64::from(image.height())),
            (
                variant["width"].as_u64().unwrap(),
                variant["height"].as_u64().unwrap()
            )
        );
    }
    let profile_image = data["id"].as_str().unwrap().to_owned();
    let banner = upload(
        &app,
        &sam,
        &[("purpose", b"banner"), ("file", &png(3000, 1000))],
    )
    .await;
    assert_eq!(
        banner.body["data"]["variants"].as_array().map(Vec::len),
        Some(4)
    );

    // The profile names them; someone else's file is refused.
    let named = put_profile(&app, &sam, json!({"profileImageId": profile_image})).await;
    assert_eq!(named.status, 200, "{}", named.body);
    assert_eq!(named.body["data"]["profileImageId"], profile_image.as_str());
    let stolen = put_profile(&app, &kim, json!({"profileImageId": profile_image})).await;
    assert_eq!(
        (stolen.status, code(&stolen)),
        (422, json!("InvalidProfile"))
    );
    // Anyone sees the avatar with the person, signed in or not.
    let public = app
        .client
        .get(app.url(&format!("/api/v2/user/{}", sam.id)))
        .reply()
        .await;
    assert_eq!(
        public.body["data"]["profileImageId"],
        profile_image.as_str()
    );

    // Upright and stripped: a 200×100 photo saying "rotate 90°" is stored 100×200, no EXIF.
    let photo = upload(
        &app,
        &sam,
        &[("purpose", b"profile"), ("file", &rotated_jpeg(200, 100))],
    )
    .await;
    assert_eq!(photo.status, 200, "{}", photo.body);
    let stored = fetch(&app, photo.body["data"]["url"].as_str().unwrap(), None).await;
    let stored = stored.bytes().await.unwrap();
    let image = image::load_from_memory(&stored).unwrap();
    assert_eq!((image.width(), image.height()), (100, 200));
    assert!(!stored.windows(4).any(|w| w == b"Exif"), "metadata dropped");

    // Kinds come from the bytes; what a purpose may not take is refused.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>"#;
    let chat = create_chat(&app, &sam, &[], json!({"name": "Private"})).await;
    let cases: [(&Fields, u16, &str); 6] = [
        (
            &[
                ("purpose", b"attachment"),
                ("chatId", chat.as_bytes()),
                ("file", svg),
            ],
            415,
            "UnsupportedFileType",
        ),
        (
            &[("purpose", b"profile"), ("file", b"%PDF-1.7\n%%EOF")],
            415,
            "UnsupportedFileType",
        ),
        (
            &[
                ("purpose", b"attachment"),
                ("chatId", chat.as_bytes()),
                ("file", b"MZ\x90\x00\x03\x00\x00\x00"),
            ],
            415,
            "UnsupportedFileType",
        ),
        (
            &[("purpose", b"attachment"), ("file", b"hello")],
            400,
            "MissingChatId",
        ),
        (
            &[
                ("purpose", b"profile"),
                ("file", &claimed_png(100_000, 100_000)),
            ],
            422,
            "ImageTooLarge",
        ),
        (
            &[
                ("purpose", b"attachment"),
                ("chatId", chat.as_bytes()),
                ("file", &vec![b'a'; 300 * 1024]),
            ],
            413,
            "BodyTooLarge",
        ),
    ];
    for (fields, status, expected) in cases {
        let reply = upload(&app, &sam, fields).await;
        assert_eq!(
            (reply.status, code(&reply)),
            (status, json!(expected)),
            "{}",
            reply.body
        );
    }
    let vector = upload(&app, &sam, &[("purpose", b"profile"), ("file", svg)]).await;
    assert_eq!(vector.status, 200, "{}", vector.body);
    assert_eq!(vector.body["data"]["contentType"], "image/svg+xml");
    let served = fetch(&app, vector.body["data"]["url"].as_str().unwrap(), None).await;
    assert!(
        served.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );

    // An attachment of a private chat: its participants read it, nobody else finds it.
    let note = upload(
        &app,
        &sam,
        &[
            ("purpose", b"attachment"),
            ("chatId", chat.as_bytes()),
            ("file", b"meeting notes\n"),
        ],
    )
    .await;
    assert_eq!(note.status, 200, "{}", note.body);
    assert_eq!(
        note.body["data"]["contentType"],
        "text/plain; charset=utf-8"
    );
    let url = note.body["data"]["url"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&app, &url, Some(&sam)).await.status(), 200);
    assert_eq!(fetch(&app, &url, Some(&kim)).await.status(), 404);
    assert_eq!(fetch(&app, &url, None).await.status(), 404);
    let by_kim = upload(
        &app,
        &kim,
        &[
            ("purpose", b"attachment"),
            ("chatId", chat.as_bytes()),
            ("file", b"hi"),
        ],
    )
    .await;
    assert_eq!((by_kim.status, code(&by_kim)), (404, json!("ChatNotFound")));

    // Orphans: an old profile image nobody names goes, with its objects; the named one stays.
    let unused = upload(
        &app,
        &sam,
        &[("purpose", b"profile"), ("file", &png(64, 64))],
    )
    .await;
    let unused = unused.body["data"]["id"].as_str().unwrap().to_owned();
    sqlx::query(
        "UPDATE files SET created_at = now() - interval '2 days' WHERE purpose = 'profile'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let jobs = vrooli::jobs::JobStore::new(
        app.db.pool.clone(),
        std::sync::Arc::new(vrooli::ids::Snowflake::new(97).unwrap()),
        std::sync::Arc::new(vrooli::jobs::SystemClock),
        "files-test",
        5,
    );
    jobs.enqueue(vrooli::jobs::NewJob::new(
        vrooli::jobs::Queue::Maintenance,
        "files.delete-orphans",
        json!({}),
    ))
    .await
    .unwrap();
    wait_until(Duration::from_secs(20), "the orphan job ran", || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM files WHERE id = $1::BIGINT")
            .bind(&unused)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        left == 0
    })
    .await;
    let dir = std::path::PathBuf::from(&app.settings.storage.local_dir);
    assert!(!dir.join(format!("{unused}.png")).exists());
    assert!(!dir.join(format!("{unused}_400x400.png")).exists());
    assert!(
        dir.join(format!("{profile_image}.png")).exists(),
        "the named image stays"
    );
    assert_eq!(
        fetch(&app, &format!("/api/v2/file/{profile_image}"), None)
            .await
            .status(),
        200
    );
}

/// A GIF whose logical screen is 1×1 but whose frame is 10000×10000 (100 million pixels, over
/// the 40 million of `storage.max_image_pixels`): refused by the frame's own descriptor before
/// anything is decoded (issue 34, A11: the screen alone was checked, and the frame decoded).
#[tokio::test]
async fn a_gif_frame_larger_than_its_screen_is_judged_by_its_own_size() {
    let app = crate::helpers::spawn_app().await;
    let sam = user(&app, "Sam").await;
    let mut gif = b"GIF89a".to_vec();
    // Logical screen 1×1, a global colour table of two entries.
    gif.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
    // One image: at 0,0, 10000×10000, no local table; LZW (minimum code size 2): clear, the
    // colour 0, end — one pixel of data.
    gif.extend_from_slice(&[0x2c, 0, 0, 0, 0, 0x10, 0x27, 0x10, 0x27, 0]);
    gif.extend_from_slice(&[2, 2, 0x44, 0x01, 0, 0x3b]);
    let started = std::time::Instant::now();
    let reply = upload(&app, &sam, &[("purpose", b"profile"), ("file", &gif)]).await;
    assert_eq!(
        (reply.status, code(&reply)),
        (422, json!("ImageTooLarge")),
        "{}",
        reply.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused before decoding: {:?}",
        started.elapsed()
    );
}
