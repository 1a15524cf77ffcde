//! The few Stripe API calls billing makes, as form posts over reqwest (ADR 27: no Stripe crate).
//! Every call carries the secret key as a bearer token; Stripe's error bodies
//! (`{"error": {"message", "type", "code"}}`) come back as [`StripeError::Api`].

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("Stripe answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("Stripe could not be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
}

#[derive(Clone)]
pub struct StripeApi {
    http: reqwest::Client,
    base: String,
    key: SecretString,
}

#[derive(Debug, Deserialize)]
pub struct Created {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
}

impl StripeApi {
    pub fn new(base: &str, key: SecretString, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    /// `POST /v1/<path>` with `form`; the created object's id (and url, for sessions).
    pub async fn post(
        &self,
        path: &str,
        form: &[(String, String)],
    ) -> Result<Created, StripeError> {
        let response = self
            .http
            .post(format!("{}/v1/{path}", self.base))
            .bearer_auth(self.key.expose_secret())
            .form(form)
            .send()
            .await?;
        Self::read(response).await
    }

    /// `GET /v1/balance`: whether Stripe answers with this key (the health check).
    pub async fn balance(&self) -> Result<(), StripeError> {
        let response = self
            .http
            .get(format!("{}/v1/balance", self.base))
            .bearer_auth(self.key.expose_secret())
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(Self::api_error(status.as_u16(), response).await)
    }

    async fn read(response: reqwest::Response) -> Result<Created, StripeError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        Err(Self::api_error(status.as_u16(), response).await)
    }

    async fn api_error(status: u16, response: reqwest::Response) -> StripeError {
        let message = response
            .json::<ErrorBody>()
            .await
            .map(|b| b.error.message)
            .unwrap_or_default();
        StripeError::Api { status, message }
    }
}
