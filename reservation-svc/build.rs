//! build: rebuilds the crate when a migration is added, so that `sqlx::migrate!` embeds it
//! (a proc macro cannot tell cargo about a folder it reads).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
