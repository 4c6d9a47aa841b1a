//! Structured contact notes: the form (data, versioned), drafts saved as the operator types,
//! submission that locks a note, amendments that keep the original, and the HTTP API.
//! A note with high or imminent risk, or its crisis flag set, pages the crisis team.
//!
//! Never: change a submitted note in place, or accept a note that breaks its form.

pub mod form;
pub mod http;

use std::sync::Arc;

use anyhow::Context as _;

use crate::config::NotesSettings;
use form::NoteForm;

/// The form in force: from `notes.form_file`, or the built-in one.
pub fn load_form(settings: &NotesSettings) -> anyhow::Result<Arc<NoteForm>> {
    let form = match &settings.form_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading note form {}", path.display()))?;
            serde_json::from_str(&text).context("parsing the note form")?
        }
        None => form::default_form(),
    };
    form.check()
        .map_err(|e| anyhow::anyhow!("the note form is invalid: {e}"))?;
    Ok(Arc::new(form))
}
