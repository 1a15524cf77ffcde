//! Every error code the API answers, with its status: the one table (as Meilisearch keeps one).
//! A handler names a `Code`; the status follows from it, so one code never means two statuses.
//! `docs/ERRORS.md` lists the same table (a test keeps the two in step).

use super::error::ErrorKind;

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
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name),)*
                }
            }

            /// What kind of failure it is, which decides the HTTP status.
            pub fn kind(self) -> ErrorKind {
                match self {
                    $(Code::$name => ErrorKind::$kind,)*
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
    SessionTooLarge => Unprocessable,
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
    fn the_documented_table_is_the_table() {
        let doc = include_str!("../../docs/ERRORS.md");
        for code in Code::ALL {
            let row = format!(
                "| `{}` | {} |",
                code.as_str(),
                code.kind().status().as_u16()
            );
            assert!(doc.contains(&row), "docs/ERRORS.md lacks the row {row}");
        }
        let rows = doc.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(
            rows,
            Code::ALL.len(),
            "docs/ERRORS.md lists codes that do not exist"
        );
    }
}
