//! A user's notification settings (`users.notification_settings`; the original's
//! `notificationSettings`): everything on or off, email on or off, and the same per category.
//! A category not named follows the top level. Read by `create_in` for every notice:
//!
//! ```text
//! notice for user ─▶ settings.allows(category)?  no ─▶ nothing stored, nothing sent
//!                  ─▶ yes: the in-app row (+ user/notification/received after the commit)
//!                  ─▶ settings.by_email(category) and a verified address ─▶ email-send job
//!                  ─▶ settings.by_push(category) ─▶ a push-notification job per device
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The kinds of notice the server sends.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Category {
    /// Someone invited you to a chat.
    ChatInvite,
    /// Someone invited you to a team.
    TeamInvite,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::ChatInvite => "ChatInvite",
            Category::TeamInvite => "TeamInvite",
        }
    }
}

/// One category's switches; unset ones follow the top level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CategorySettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_emails: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_push: Option<bool>,
}

/// What reaches a user. The default: every category, in the app and by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotificationSettings {
    /// Off: no notice at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Off: notices do not go out by email.
    #[serde(default = "yes")]
    pub to_emails: bool,
    /// Off: notices are not pushed to subscribed browsers.
    #[serde(default = "yes")]
    pub to_push: bool,
    /// Per category (`ChatInvite`, `TeamInvite`).
    #[serde(default)]
    pub categories: BTreeMap<Category, CategorySettings>,
}

fn yes() -> bool {
    true
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            to_emails: true,
            to_push: true,
            categories: BTreeMap::new(),
        }
    }
}

impl NotificationSettings {
    /// Stored settings as read back; what cannot be read (a shape of an older version) counts
    /// as the default rather than silencing someone.
    pub fn from_stored(value: &serde_json::Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    /// Whether a notice of `category` is made at all.
    pub fn allows(&self, category: Category) -> bool {
        self.enabled
            && self
                .categories
                .get(&category)
                .and_then(|c| c.enabled)
                .unwrap_or(true)
    }

    /// Whether it is also pushed to the user's subscribed browsers.
    pub fn by_push(&self, category: Category) -> bool {
        self.allows(category)
            && self
                .categories
                .get(&category)
                .and_then(|c| c.to_push)
                .unwrap_or(self.to_push)
    }

    /// Whether it also goes out by email.
    pub fn by_email(&self, category: Category) -> bool {
        self.allows(category)
            && self
                .categories
                .get(&category)
                .and_then(|c| c.to_emails)
                .unwrap_or(self.to_emails)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn categories_follow_the_top_level_unless_they_say_otherwise() {
        let s: NotificationSettings = serde_json::from_value(json!({
            "toEmails": false,
            "categories": {"TeamInvite": {"toEmails": true}, "ChatInvite": {"enabled": false}}
        }))
        .unwrap();
        assert!(s.allows(Category::TeamInvite) && s.by_email(Category::TeamInvite));
        assert!(!s.allows(Category::ChatInvite) && !s.by_email(Category::ChatInvite));
        let off = NotificationSettings {
            enabled: false,
            ..NotificationSettings::default()
        };
        assert!(!off.allows(Category::TeamInvite) && !off.by_email(Category::TeamInvite));
        let default = NotificationSettings::from_stored(&json!({}));
        assert!(default.allows(Category::ChatInvite) && default.by_email(Category::ChatInvite));
        // Unknown categories and fields are refused when written, ignored when read.
        assert!(
            serde_json::from_value::<NotificationSettings>(json!({"categories": {"Spam": {}}}))
                .is_err()
        );
        assert_eq!(
            NotificationSettings::from_stored(&json!({"colour": 1})),
            NotificationSettings::default()
        );
    }
}
