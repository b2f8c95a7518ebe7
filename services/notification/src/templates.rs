//! Notification texts, from template files under `TEMPLATES_DIR`:
//! `<locale>/<kind>.<channel>.<ext>` (`en/staff_reply.inapp.txt`,
//! `pt/staff_reply.email.html`). Every file is read and compiled at start,
//! so a syntax error stops the service instead of a send.
//!
//! - Strict: a variable a template names but the params lack is an error,
//!   never an empty string.
//! - `.html` templates escape every value; `.txt` ones do not.
//! - A locale falls back along its chain, file by file: `pt-BR` → `pt` →
//!   [`FALLBACK_LOCALE`], so a translation may cover only some kinds.
//!
//! In-app (and push, which shows the same text) templates are a `title`
//! block on the first line and a `body` block on the next (the newline
//! between them is the separator, so blocks are not trimmed); the email
//! subject is the in-app title.

use std::{collections::HashSet, path::Path};

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::domain::Kind;

/// The locale every kind must have.
pub const FALLBACK_LOCALE: &str = "en";

/// What a template file is for.
#[derive(Clone, Copy, Debug)]
pub enum Part {
    /// `inapp.txt`: `title` and `body` blocks.
    InApp,
    /// `email.txt`: the plain-text email body.
    EmailText,
    /// `email.html`: the HTML email body.
    EmailHtml,
}

impl Part {
    const ALL: [Part; 3] = [Part::InApp, Part::EmailText, Part::EmailHtml];

    fn suffix(self) -> &'static str {
        match self {
            Part::InApp => "inapp.txt",
            Part::EmailText => "email.txt",
            Part::EmailHtml => "email.html",
        }
    }
}

/// A title and body (in-app and push).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    pub title: String,
    pub body: String,
}

/// A rendered email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailText {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A template that failed: missing, or naming a variable it was not given.
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {source}")]
pub struct RenderError {
    name: String,
    #[source]
    source: minijinja::Error,
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
    names: HashSet<String>,
}

impl Templates {
    /// Reads every template under `dir`; fails when one does not compile or
    /// the fallback locale lacks a kind's file.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(false);
        let mut names = HashSet::new();
        for locale in std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("TEMPLATES_DIR {}: {e}", dir.display()))?
        {
            let locale = locale?;
            if !locale.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(locale.path())? {
                let path = file?.path();
                let name = format!(
                    "{}/{}",
                    locale.file_name().to_string_lossy(),
                    path.file_name().unwrap_or_default().to_string_lossy()
                );
                let source = std::fs::read_to_string(&path)?;
                env.add_template_owned(name.clone(), source)
                    .map_err(|e| anyhow::anyhow!("template {name}: {e}"))?;
                names.insert(name);
            }
        }
        for kind in Kind::ALL {
            for part in Part::ALL {
                let name = format!("{FALLBACK_LOCALE}/{kind}.{}", part.suffix());
                anyhow::ensure!(names.contains(&name), "template {name} is missing");
            }
        }
        Ok(Self { env, names })
    }

    /// The in-app title and body (push shows the same).
    pub fn in_app(
        &self,
        locale: &str,
        kind: Kind,
        params: &impl Serialize,
    ) -> Result<Text, RenderError> {
        let name = self.resolve(locale, kind, Part::InApp);
        let wrap = |source| RenderError {
            name: name.clone(),
            source,
        };
        let rendered = self
            .env
            .get_template(&name)
            .and_then(|t| t.render(params))
            .map_err(wrap)?;
        // The title block is the first line, the body block the rest.
        let (title, body) = rendered.split_once('\n').unwrap_or((&rendered, ""));
        Ok(Text {
            title: title.trim().to_owned(),
            body: body.trim().to_owned(),
        })
    }

    /// The email's subject, plain text and HTML.
    pub fn email(
        &self,
        locale: &str,
        kind: Kind,
        params: &impl Serialize,
    ) -> Result<EmailText, RenderError> {
        let subject = self.in_app(locale, kind, params)?.title;
        let render = |part| {
            let name = self.resolve(locale, kind, part);
            self.env
                .get_template(&name)
                .and_then(|t| t.render(params))
                .map_err(|source| RenderError { name, source })
        };
        Ok(EmailText {
            subject,
            text: render(Part::EmailText)?,
            html: render(Part::EmailHtml)?,
        })
    }

    /// The first file along the locale's fallback chain.
    fn resolve(&self, locale: &str, kind: Kind, part: Part) -> String {
        locale_chain(locale)
            .into_iter()
            .map(|l| format!("{l}/{kind}.{}", part.suffix()))
            .find(|name| self.names.contains(name))
            .unwrap_or_else(|| format!("{FALLBACK_LOCALE}/{kind}.{}", part.suffix()))
    }
}

/// `pt-BR` → `[pt-BR, pt, en]`; `pt_br` is read as `pt-BR`; empty → `[en]`.
pub fn locale_chain(locale: &str) -> Vec<String> {
    let mut chain = Vec::new();
    let mut parts = locale.trim().split(['-', '_']).filter(|p| !p.is_empty());
    if let Some(language) = parts.next() {
        let language = language.to_ascii_lowercase();
        if let Some(region) = parts.next() {
            chain.push(format!("{language}-{}", region.to_ascii_uppercase()));
        }
        chain.push(language);
    }
    if !chain.iter().any(|l| l == FALLBACK_LOCALE) {
        chain.push(FALLBACK_LOCALE.to_owned());
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_fall_back_to_language_then_english() {
        assert_eq!(locale_chain("pt-BR"), ["pt-BR", "pt", "en"]);
        assert_eq!(locale_chain("pt_br"), ["pt-BR", "pt", "en"]);
        assert_eq!(locale_chain("en-GB"), ["en-GB", "en"]);
        assert_eq!(locale_chain(""), ["en"]);
    }

    fn shipped() -> Templates {
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap()
    }

    fn params() -> serde_json::Value {
        serde_json::json!({
            "ticket": {"id": "t", "human_id": "TKT-ABC123", "subject": "Lost <b>phone</b>",
                       "status": "open", "priority": "high"},
            "actor_name": "Sam", "user_name": "Alice", "assignee_name": "Sue", "recipient_name": "Alice",
            "excerpt": "We found it", "reminder": 1, "due_at": "2026-12-01T10:00:00Z",
            "reason": "open too long", "link": "/support/tickets/TKT-ABC123",
            "url": "http://localhost/support/tickets/TKT-ABC123",
        })
    }

    #[test]
    fn every_shipped_template_renders_with_the_documented_params() {
        let templates = shipped();
        for kind in Kind::ALL {
            for locale in ["en", "pt-BR"] {
                let text = templates.in_app(locale, *kind, &params()).unwrap();
                assert!(
                    !text.title.is_empty() && !text.body.is_empty(),
                    "{kind} {locale}"
                );
                let email = templates.email(locale, *kind, &params()).unwrap();
                assert!(
                    email.text.contains("TKT-ABC123"),
                    "{kind} {locale}: {}",
                    email.text
                );
            }
        }
    }

    #[test]
    fn html_escapes_values_and_missing_variables_fail() {
        let templates = shipped();
        let email = templates.email("en", Kind::StaffReply, &params()).unwrap();
        // minijinja's HTML escaping also writes `/` as `&#x2f;`.
        assert!(
            email.html.contains("Lost &lt;b&gt;phone&lt;&#x2f;b&gt;")
                && !email.html.contains("<b>"),
            "{}",
            email.html
        );
        assert!(email.text.contains("Lost <b>phone</b>"));
        let err = templates
            .in_app("en", Kind::StaffReply, &serde_json::json!({"ticket": {}}))
            .unwrap_err();
        assert!(
            err.to_string().contains("en/staff_reply.inapp.txt"),
            "{err}"
        );
    }

    #[test]
    fn a_translation_wins_over_english() {
        let templates = shipped();
        let en = templates
            .in_app("en", Kind::TicketResolved, &params())
            .unwrap();
        let pt = templates
            .in_app("pt-BR", Kind::TicketResolved, &params())
            .unwrap();
        assert_ne!(en.title, pt.title);
    }
}
