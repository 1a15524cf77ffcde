//! One actor per WebSocket connection (`actor`) and the node's registry of connections
//! (`registry`); its outbound queue and writer are `crate::outbound`.

pub mod actor;
pub mod registry;

use std::sync::Arc;

pub use crate::outbound::{ConnId, Outbound, PushError};
pub use actor::SessionActor;
pub use registry::{Admission, CloseConnection, Refusal, SessionRegistry};

use crate::access::Authorizer;
use crate::broker::{Broker, BrokerError, NodeMessage, NodeTarget};
use crate::ids::ChatId;
use crate::limits::WsLimits;
use crate::room::RoomRegistry;

/// What every connection's actor uses: the server's authorizer, the limits, the rooms to join,
/// the registry to sign in to, and the broker (to ask every node to stop a chat's work).
pub(crate) struct SessionDeps {
    pub authorizer: Arc<dyn Authorizer>,
    pub limits: WsLimits,
    pub rooms: Arc<RoomRegistry>,
    pub sessions: SessionRegistry,
    pub broker: Arc<dyn Broker>,
}

impl SessionDeps {
    pub(crate) async fn cancel_chat(&self, chat_id: ChatId) -> Result<(), BrokerError> {
        let message = NodeMessage::CancelChat { chat_id };
        self.broker.send(NodeTarget::All, &message).await
    }
}
