//! The lists, for owners only: each with its counts, a new one, a new name.
//! The same domain code and store as `necmail list`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::pages::{AdminPageError, render};
use super::session::{CsrfForm, Owner};
use crate::admin;
use crate::lists::{ListSlug, NewList, OptIn, parse_list_name};
use crate::web::Shared;

fn invalid(e: impl std::fmt::Display) -> AdminPageError {
    AdminPageError::Invalid(e.to_string())
}

pub(super) async fn list(
    State(state): State<Shared>,
    Owner(who): Owner,
) -> Result<Response, AdminPageError> {
    let lists: Vec<_> = state
        .lists
        .lists()
        .await?
        .into_iter()
        .map(|l| {
            json!({
                "slug": l.slug.as_str(),
                "name": l.name,
                "description": l.description,
                "opt_in": l.opt_in.as_str(),
                "public": l.public,
                "counts": l.subscribers,
            })
        })
        .collect();
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "lists",
        json!({"lists": lists}),
    ))
}

#[derive(serde::Deserialize)]
pub(super) struct NewListForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    single_opt_in: Option<String>,
    #[serde(default)]
    private: Option<String>,
}

/// Creates a list, as `necmail list create` does.
pub(super) async fn add(
    State(state): State<Shared>,
    Owner(who): Owner,
    CsrfForm(form): CsrfForm<NewListForm>,
) -> Result<Response, AdminPageError> {
    let list = state
        .lists
        .create_list(&NewList {
            slug: ListSlug::parse(form.slug.trim()).map_err(invalid)?,
            name: parse_list_name(&form.name).map_err(invalid)?,
            description: form.description.trim().to_owned(),
            opt_in: if form.single_opt_in.is_some() {
                OptIn::Single
            } else {
                OptIn::Double
            },
            public: form.private.is_none(),
        })
        .await?;
    admin::audit(
        &*state.admin,
        &who.actor(),
        "list.create",
        list.slug.as_str(),
    )
    .await?;
    Ok(Redirect::to("/admin/lists").into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct Rename {
    #[serde(default)]
    name: String,
}

pub(super) async fn rename(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<Rename>,
) -> Result<Response, AdminPageError> {
    let slug = ListSlug::parse(&slug).map_err(|_| AdminPageError::NotFound)?;
    let name = parse_list_name(&form.name).map_err(invalid)?;
    let list = state.lists.rename_list(&slug, &name).await?;
    let detail = format!("{} to {}", list.slug, list.name);
    admin::audit(&*state.admin, &who.actor(), "list.rename", &detail).await?;
    Ok(Redirect::to("/admin/lists").into_response())
}
