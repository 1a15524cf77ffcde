//! The load generator's WebSocket client (`ws_load.rs` and its modes): a socket opened with a
//! session cookie and joined to chat 1, the way a browser would, every frame parsed as JSON.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `url` as the holder of `token` and joins chat 1; returns once the join is acknowledged
/// (an error names what failed: the connect, the handshake, or the refused join).
pub async fn open_and_join(url: &str, token: &str) -> Result<Ws, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("cookie", format!("session-v2={token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    ws.send(Message::Text(
        json!({"id": "j", "cmd": "joinChatRoom", "data": {"chatId": "1"}})
            .to_string()
            .into(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    while let Some(message) = ws.next().await {
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if value["ack"] == "j" {
            return if value["success"] == true {
                Ok(ws)
            } else {
                Err(value.to_string())
            };
        }
    }
    Err("closed before the ack".into())
}
