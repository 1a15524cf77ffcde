//! The one request helper of the API tests and what it returns: `TestApp::call` (in `mod.rs`)
//! and `request.reply()` for hand-built requests both give a [`Reply`].

/// Who a request is from, as [`TestApp::call`] sends it.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    Nobody,
    /// A session token, sent as the browser sends it (the session cookie).
    Cookie(&'a str),
    /// An API key (`x-api-key`).
    ApiKey(&'a str),
}

/// A response, read once: its status, headers, text and JSON body (`Null` when not JSON).
/// What every request helper of these tests returns.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: serde_json::Value,
}

impl Reply {
    /// Sends `request` and reads its answer.
    pub async fn of(request: reqwest::RequestBuilder) -> Self {
        Self::read(request.send().await.expect("request sent")).await
    }

    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Self {
            status,
            headers,
            text,
            body,
        }
    }
}

/// A hand-built request (its own headers, a raw body, another node) sent and read as a
/// [`Reply`]: `request.reply().await`.
pub trait SendReply {
    fn reply(self) -> impl std::future::Future<Output = Reply>;
}

impl SendReply for reqwest::RequestBuilder {
    fn reply(self) -> impl std::future::Future<Output = Reply> {
        Reply::of(self)
    }
}
