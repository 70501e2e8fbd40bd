//! Rebuilds when a migration is added: `sqlx::migrate!` embeds the
//! migrations folders, but cargo watches only the files it compiles.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
