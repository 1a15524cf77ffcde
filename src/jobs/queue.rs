//! The queues, as in the original (plus `maintenance` for our scheduled housekeeping).
//! In the database a queue is its original name (`email-send`); in config it is the same name
//! in snake_case (`[jobs.queues.email_send]`) so environment overrides can name it.

use crate::config::{QueueSettings, QueuesSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    EmailSend,
    SmsMessage,
    PushNotification,
    NotificationCreate,
    LlmCompletion,
    RunStart,
    SandboxExecution,
    ImportUserData,
    ExportUserData,
    Maintenance,
}

impl Queue {
    pub const ALL: [Queue; 10] = [
        Queue::EmailSend,
        Queue::SmsMessage,
        Queue::PushNotification,
        Queue::NotificationCreate,
        Queue::LlmCompletion,
        Queue::RunStart,
        Queue::SandboxExecution,
        Queue::ImportUserData,
        Queue::ExportUserData,
        Queue::Maintenance,
    ];

    /// The name stored in `jobs.queue`.
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::EmailSend => "email-send",
            Queue::SmsMessage => "sms-message",
            Queue::PushNotification => "push-notification",
            Queue::NotificationCreate => "notification-create",
            Queue::LlmCompletion => "llm-completion",
            Queue::RunStart => "run-start",
            Queue::SandboxExecution => "sandbox-execution",
            Queue::ImportUserData => "import-user-data",
            Queue::ExportUserData => "export-user-data",
            Queue::Maintenance => "maintenance",
        }
    }

    /// The key under `[jobs.queues]`.
    pub fn config_key(self) -> String {
        self.as_str().replace('-', "_")
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == name)
    }
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl QueuesSettings {
    pub fn get(&self, queue: Queue) -> &QueueSettings {
        match queue {
            Queue::EmailSend => &self.email_send,
            Queue::SmsMessage => &self.sms_message,
            Queue::PushNotification => &self.push_notification,
            Queue::NotificationCreate => &self.notification_create,
            Queue::LlmCompletion => &self.llm_completion,
            Queue::RunStart => &self.run_start,
            Queue::SandboxExecution => &self.sandbox_execution,
            Queue::ImportUserData => &self.import_user_data,
            Queue::ExportUserData => &self.export_user_data,
            Queue::Maintenance => &self.maintenance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_has_its_config_key() {
        let settings = crate::config::Settings::load_with_env(
            &crate::config::Sources::default(),
            std::iter::empty(),
        )
        .unwrap();
        let named = settings.jobs.queues.named();
        for q in Queue::ALL {
            let (_, by_key) = named
                .iter()
                .find(|(key, _)| *key == q.config_key())
                .unwrap_or_else(|| panic!("{q} has no [jobs.queues] key"));
            assert!(std::ptr::eq(*by_key, settings.jobs.queues.get(q)), "{q}");
        }
    }

    #[test]
    fn names_round_trip() {
        for q in Queue::ALL {
            assert_eq!(Queue::parse(q.as_str()), Some(q));
        }
        assert_eq!(Queue::EmailSend.config_key(), "email_send");
        assert_eq!(Queue::parse("nope"), None);
    }
}
