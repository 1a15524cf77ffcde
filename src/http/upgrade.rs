//! WebSocket upgrades, out of actix-http's connection.
//!
//! ```text
//! upgrade request ─▶ Upgrade service ─▶ the whole actix-web app (middleware, `/ws` handler)
//!                        │ 101 and the handler's Accepted ─▶ write the 101 ─▶ Hub::connect(socket)
//!                        └ anything else (401, 429, 404…) ─▶ write it, close
//! ```
//!
//! actix-http hands a request with `Connection: upgrade` to this service together with the
//! connection itself. The request still goes through the same app as every other request (a
//! second instance of it per worker, built from the same factory), so authentication, the origin
//! guard, rate limits and logging are unchanged. What changes is after the handshake: the socket
//! leaves actix-http's dispatcher, whose 16 KiB of read and write buffers and timers would
//! otherwise stay with every idle WebSocket, and goes to the hub bare (ADR 21).

use std::cell::RefCell;
use std::rc::Rc;

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::h1;
use actix_http::h1::Message;
use actix_http::{ConnectionType, HttpMessage, Request, Response, StatusCode};
use actix_service::{Service, ServiceFactory, ServiceFactoryExt, fn_factory, fn_service};
use actix_web::dev::{AppConfig, ServiceResponse};
use futures_util::SinkExt;
use tokio::net::TcpStream;
use vrooli_actors::{Admission, Caller, Hub};

/// What `/ws`'s handler leaves for this service when it accepts a connection.
#[derive(Clone, Default)]
pub struct Accepted(Rc<RefCell<Option<(Admission, Caller)>>>);

impl Accepted {
    pub fn fill(&self, admission: Admission, caller: Caller) {
        *self.0.borrow_mut() = Some((admission, caller));
    }

    fn take(&self) -> Option<(Admission, Caller)> {
        self.0.borrow_mut().take()
    }
}

type Upgraded = (Request, Framed<TcpStream, h1::Codec>);

/// The upgrade service of one worker: builds its own instance of the app from `app`.
pub fn factory<F, I, S, B>(
    app: F,
    hub: Hub,
) -> impl ServiceFactory<Upgraded, Config = (), Response = (), Error = actix_web::Error, InitError = ()>
where
    F: Fn() -> I + 'static,
    I: actix_service::IntoServiceFactory<S, Request>,
    S: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
        > + 'static,
    S::InitError: std::fmt::Debug,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    fn_factory(move || {
        let app = actix_service::IntoServiceFactory::into_factory(app()).map_init_err(|e| {
            tracing::error!(error = ?e, "the app for WebSocket upgrades did not start");
        });
        let hub = hub.clone();
        async move {
            let app = Rc::new(app.new_service(AppConfig::default()).await?);
            Ok::<_, ()>(fn_service(move |upgraded: Upgraded| {
                upgrade(Rc::clone(&app), hub.clone(), upgraded)
            }))
        }
    })
}

async fn upgrade<S, B>(
    app: Rc<S>,
    hub: Hub,
    (req, mut framed): Upgraded,
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let accepted = Accepted::default();
    req.extensions_mut().insert(accepted.clone());
    let response: Response<actix_web::body::BoxBody> = match app.call(req).await {
        Ok(response) => response.map_into_boxed_body().into(),
        Err(error) => error.error_response().into(),
    };
    let (mut head, body) = response.into_parts();
    if head.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some((admission, caller)) = accepted.take()
    {
        framed.send(Message::Item((head, BodySize::None))).await?;
        let parts = framed.into_parts();
        hub.connect(admission, caller, parts.io, parts.read_buf);
        return Ok(());
    }
    // Refused (the error envelope) or not a WebSocket route: answer as HTTP, then close.
    let body = actix_web::body::to_bytes(body).await.unwrap_or_default();
    head.head_mut().set_connection_type(ConnectionType::Close);
    framed
        .send(Message::Item((head, BodySize::Sized(body.len() as u64))))
        .await?;
    if !body.is_empty() {
        framed.send(Message::Chunk(Some(body))).await?;
    }
    framed.send(Message::Chunk(None)).await?;
    framed.close().await?;
    Ok(())
}
