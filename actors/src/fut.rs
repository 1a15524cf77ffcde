//! The boxed future of the crate's object-safe traits (`Broker`, `Authorizer`, `RunDriver`).

use std::future::Future;
use std::pin::Pin;

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
