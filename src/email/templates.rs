//! The messages we send, each as a subject, a plain-text body and an HTML body. Values from users
//! (names) are escaped in HTML; codes go into links percent-encoded.

use serde::{Deserialize, Serialize};

/// Which message, with its values. Stored in the job payload and rendered when sent, so a job
/// queued before a wording change goes out with the new wording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "camelCase")]
pub enum Template {
    /// Confirms an email address.
    Verification {
        name: String,
        /// Empty in a queued job whose code is made when it is sent (`SendEmail::code_for`).
        #[serde(default)]
        code: String,
    },
    /// Lets a user choose a new password; the code is single-use and expires.
    PasswordReset {
        name: String,
        #[serde(default)]
        code: String,
    },
    /// A notice (an invite, …) for someone whose settings ask for email; `link` is a path in
    /// the app.
    Notification {
        name: String,
        title: String,
        #[serde(default)]
        description: Option<String>,
        link: String,
    },
}

impl Template {
    /// Puts `value` in as the message's code.
    pub fn set_code(&mut self, value: String) {
        match self {
            Template::Verification { code, .. } | Template::PasswordReset { code, .. } => {
                *code = value
            }
            Template::Notification { .. } => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn render(template: &Template, ui_url: &str) -> Rendered {
    let ui_url = ui_url.trim_end_matches('/');
    match template {
        Template::Verification { name, code } => {
            let link = format!("{ui_url}/verify-email?code={}", encode(code));
            message(
                "Confirm your email address",
                name,
                "Please confirm that this is your email address by opening the link below.",
                &link,
                "Confirm email",
                "If you did not create a Vrooli account, you can ignore this message.",
            )
        }
        Template::Notification {
            name,
            title,
            description,
            link,
        } => message(
            title,
            name,
            description.as_deref().unwrap_or(title),
            &format!("{ui_url}{link}"),
            "Open Vrooli",
            "You get these emails because of your notification settings; you can change them in the app.",
        ),
        Template::PasswordReset { name, code } => {
            let link = format!("{ui_url}/reset-password?code={}", encode(code));
            message(
                "Reset your password",
                name,
                "Someone asked to reset the password of your Vrooli account. Open the link below to choose a new one. The link works once and expires soon.",
                &link,
                "Choose a new password",
                "If it was not you, ignore this message: your password stays as it is.",
            )
        }
    }
}

fn message(
    subject: &str,
    name: &str,
    lead: &str,
    link: &str,
    button: &str,
    footer: &str,
) -> Rendered {
    let text = format!("Hi {name},\n\n{lead}\n\n{link}\n\n{footer}\n\n— Vrooli\n");
    let html = format!(
        "<!doctype html>\n<html><body style=\"font-family: sans-serif; line-height: 1.5\">\
         <p>Hi {name},</p><p>{lead}</p>\
         <p><a href=\"{link}\" style=\"display: inline-block; padding: 8px 16px; background: #4b6bfb; color: #fff; text-decoration: none; border-radius: 4px\">{button}</a></p>\
         <p style=\"color: #666\">{footer}</p><p>— Vrooli</p></body></html>\n",
        name = escape(name),
        lead = escape(lead),
        link = escape(link),
        button = escape(button),
        footer = escape(footer),
    );
    Rendered {
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_codes_encoded() {
        let r = render(
            &Template::Verification {
                name: "<b>Sam</b>".into(),
                code: "a b&c".into(),
            },
            "https://vrooli.com/",
        );
        assert_eq!(r.subject, "Confirm your email address");
        assert!(r.text.contains("Hi <b>Sam</b>,"));
        assert!(
            r.text
                .contains("https://vrooli.com/verify-email?code=a%20b%26c")
        );
        assert!(r.html.contains("Hi &lt;b&gt;Sam&lt;/b&gt;,"));
        assert!(!r.html.contains("<b>Sam"));
        assert!(
            r.html
                .contains("href=\"https://vrooli.com/verify-email?code=a%20b%26c\"")
        );
    }

    #[test]
    fn payloads_are_tagged() {
        let t = Template::PasswordReset {
            name: "Sam".into(),
            code: "123".into(),
        };
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["template"], "passwordReset");
        assert_eq!(serde_json::from_value::<Template>(json).unwrap(), t);
    }
}
