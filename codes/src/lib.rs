//! The error codes of the Vrooli server: the one table every transport answers from (as
//! Meilisearch keeps one in `meilisearch-types`). This crate is the ground floor: no
//! dependencies, so the server (`vrooli`) and the actor system (`vrooli-actors`) both name codes
//! from here and never as string literals.
//!
//! How a refusal reaches a caller: a domain error says its [`Code`] beside its definition (the
//! server's `errors::ErrorCode` trait); REST renders it with the code's [`Kind`] as the HTTP
//! status, MCP as an `isError` tool result, the WebSocket as an error ack — the same code
//! everywhere. `docs/ERRORS.md` lists this table (a test in the server keeps the two in step).

/// What kind of failure a code is; over REST it decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unprocessable,
    TooManyRequests,
    /// Not enough credits for what was asked.
    PaymentRequired,
    Internal,
    Unavailable,
}

impl Kind {
    /// The HTTP status of this kind of failure.
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unprocessable => 422,
            Self::TooManyRequests => 429,
            Self::PaymentRequired => 402,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// A failure of ours, not the caller's: its cause is logged and never shown.
    pub const fn is_ours(self) -> bool {
        matches!(self, Self::Internal | Self::Unavailable)
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident => $kind:ident,)*) => {
        /// A stable, machine-readable error code: clients branch on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $name,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as clients see it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name),)*
                }
            }

            /// What kind of failure it is, which decides the HTTP status.
            pub const fn kind(self) -> Kind {
                match self {
                    $(Code::$name => Kind::$kind,)*
                }
            }
        }
    };
}

codes! {
    // BadRequest
    AccountNotSignedIn => BadRequest,
    BadRequest => BadRequest,
    InvalidChatId => BadRequest,
    InvalidCode => BadRequest,
    InvalidCursor => BadRequest,
    InvalidExportId => BadRequest,
    InvalidImportId => BadRequest,
    InvalidId => BadRequest,
    InvalidInviteId => BadRequest,
    InvalidJobId => BadRequest,
    InvalidJson => BadRequest,
    InvalidSignature => BadRequest,
    InvalidMemberId => BadRequest,
    InvalidMessageId => BadRequest,
    InvalidNotificationId => BadRequest,
    InvalidPushDeviceId => BadRequest,
    InvalidPath => BadRequest,
    InvalidQuery => BadRequest,
    InvalidResourceId => BadRequest,
    InvalidResourceVersionId => BadRequest,
    InvalidRunId => BadRequest,
    InvalidTake => BadRequest,
    InvalidTeamId => BadRequest,
    InvalidUserId => BadRequest,
    MissingChatId => BadRequest,
    NotAWebSocket => BadRequest,
    UnknownQueue => BadRequest,
    UnreadableBody => BadRequest,
    // Unauthorized
    ApiKeyNotAccepted => Unauthorized,
    InvalidApiKey => Unauthorized,
    InvalidCredentials => Unauthorized,
    InvalidRefreshToken => Unauthorized,
    InvalidToken => Unauthorized,
    MissingApiKey => Unauthorized,
    NotLoggedIn => Unauthorized,
    RefreshTokenReused => Unauthorized,
    SessionExpired => Unauthorized,
    SessionRevoked => Unauthorized,
    Unauthorized => Unauthorized,
    // Forbidden
    AccountHardLocked => Forbidden,
    AccountSoftLocked => Forbidden,
    AdminDisabled => Forbidden,
    Forbidden => Forbidden,
    MissingPermission => Forbidden,
    NotATeamMember => Forbidden,
    NotAllowed => Forbidden,
    OutsideTeam => Forbidden,
    WrongPassword => Forbidden,
    SessionRequired => Forbidden,
    TeamKeyNotAccepted => Forbidden,
    UnsafeOrigin => Forbidden,
    // NotFound
    ApiKeyNotFound => NotFound,
    ChatNotFound => NotFound,
    DeadJobNotFound => NotFound,
    DocsFileNotFound => NotFound,
    EmailNotFound => NotFound,
    ExportNotFound => NotFound,
    FileNotFound => NotFound,
    ImportNotFound => NotFound,
    InviteNotFound => NotFound,
    MemberNotFound => NotFound,
    MessageNotFound => NotFound,
    NodeNotFound => NotFound,
    NotAParticipant => NotFound,
    PushDeviceNotFound => NotFound,
    ResourceNotFound => NotFound,
    ResourceVersionNotFound => NotFound,
    RunNotFound => NotFound,
    RouteNotFound => NotFound,
    TeamNotFound => NotFound,
    UserNotFound => NotFound,
    // MethodNotAllowed
    MethodNotAllowed => MethodNotAllowed,
    // Conflict
    AlreadyExists => Conflict,
    AlreadyMember => Conflict,
    AlreadyParticipant => Conflict,
    Conflict => Conflict,
    EmailInUse => Conflict,
    EmailNotVerified => Conflict,
    ExportInProgress => Conflict,
    ExportNotReady => Conflict,
    ImportInProgress => Conflict,
    HandleTaken => Conflict,
    IdempotencyKeyReused => Conflict,
    InviteAnswered => Conflict,
    InviteWithdrawn => Conflict,
    InvalidTransition => Conflict,
    JobNotPending => Conflict,
    LastAdmin => Conflict,
    LastEmail => Conflict,
    NoBillingAccount => Conflict,
    TooManyApiKeys => Conflict,
    TooManyPushDevices => Conflict,
    VersionHasRuns => Conflict,
    VersionLabelInUse => Conflict,
    // PayloadTooLarge
    BodyTooLarge => PayloadTooLarge,
    // UnsupportedMediaType
    UnsupportedContentEncoding => UnsupportedMediaType,
    UnsupportedFileType => UnsupportedMediaType,
    UnsupportedContentType => UnsupportedMediaType,
    // Unprocessable
    ControlCharacter => Unprocessable,
    ImageTooLarge => Unprocessable,
    InvalidAmount => Unprocessable,
    InvalidArchive => Unprocessable,
    InvalidBody => Unprocessable,
    InvalidEmail => Unprocessable,
    InvalidEventType => Unprocessable,
    InvalidHandle => Unprocessable,
    InvalidImage => Unprocessable,
    InvalidInvitee => Unprocessable,
    GraphTypeUnsupported => Unprocessable,
    InvalidLimits => Unprocessable,
    InvalidMessage => Unprocessable,
    InvalidName => Unprocessable,
    InvalidParent => Unprocessable,
    InvalidPassword => Unprocessable,
    InvalidPermission => Unprocessable,
    InvalidProfile => Unprocessable,
    InvalidReturnUrl => Unprocessable,
    InvalidPushSubscription => Unprocessable,
    InvalidResourceType => Unprocessable,
    InvalidRoutineGraph => Unprocessable,
    InvalidTaskType => Unprocessable,
    InvalidRoom => Unprocessable,
    InvalidText => Unprocessable,
    InvalidTokenType => Unprocessable,
    MissingId => Unprocessable,
    NotABot => Unprocessable,
    NodeKindUnavailable => Unprocessable,
    ReferenceNotFound => Unprocessable,
    RunTooDeep => Unprocessable,
    SessionTooLarge => Unprocessable,
    UnknownDecisionKey => Unprocessable,
    // TooManyRequests
    RateLimited => TooManyRequests,
    TooManyConnections => TooManyRequests,
    // PaymentRequired
    ApiKeyCreditLimit => PaymentRequired,
    InsufficientCredits => PaymentRequired,
    // Internal
    InternalError => Internal,
    // Unavailable
    PushNotConfigured => Unavailable,
    BillingNotConfigured => Unavailable,
    PaymentProviderError => Unavailable,
    StorageUnavailable => Unavailable,
    BrokerUnavailable => Unavailable,
    NotAcceptingConnections => Unavailable,
    RateLimitUnavailable => Unavailable,
    ServiceUnavailable => Unavailable,
    // Answered only by MCP tool calls (their arguments are not a request body).
    InvalidArguments => Unprocessable,
    UnknownTool => NotFound,
    // Answered only in WebSocket acks (`docs/PROTOCOL.md`).
    InvalidData => BadRequest,
    MissingCommand => BadRequest,
    UnknownCommand => BadRequest,
    NotInRoom => Conflict,
    /// A room that does not exist or that the caller may not enter (ids cannot be probed).
    NotFound => NotFound,
    TooManyRooms => TooManyRequests,
    /// Over the socket: a room or the broker is briefly unavailable; try again.
    Unavailable => Unavailable,
}

impl Code {
    /// What a caller reads for a failure of ours, whatever its cause (which may hold internals).
    pub const fn fixed_message(self) -> Option<&'static str> {
        match self {
            Code::InternalError => Some("Something went wrong on our side"),
            Code::ServiceUnavailable => {
                Some("A service this request needs is unavailable; try again shortly")
            }
            Code::StorageUnavailable => Some("File storage is unavailable"),
            Code::PaymentProviderError => {
                Some("The payment provider could not be reached or refused the request")
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_failures_of_ours_have_a_fixed_message() {
        let mut names: Vec<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len());
        for code in Code::ALL {
            if code.fixed_message().is_some() {
                assert!(code.kind().is_ours(), "{code} is the caller's");
            }
        }
        assert!(Code::InternalError.fixed_message().is_some());
    }
}
