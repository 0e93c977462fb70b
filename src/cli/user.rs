//! `audiencelens user create`: accounts from the command line (the first admin, typically).

use std::io::BufRead as _;

use anyhow::Context as _;
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};

use crate::app::AppState;
use crate::config::Config;
use crate::users::{self, Email, password};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (or, with --update, set an existing user's password and role).
    Create {
        email: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input (otherwise one is generated
        /// and printed once).
        #[arg(long)]
        password_stdin: bool,
        /// Change the password (and admin flag) of an existing user instead of failing.
        #[arg(long)]
        update: bool,
    },
}

pub async fn run(command: UserCommand, config: Config) -> anyhow::Result<()> {
    let UserCommand::Create { email, admin, password_stdin, update } = command;
    let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
    let (secret, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        (SecretString::from(line.trim_end_matches(['\n', '\r']).to_owned()), false)
    } else {
        let random: [u8; 12] = rand::random();
        (SecretString::from(hex::encode(random)), true)
    };
    password::check_new_password(secret.expose_secret()).map_err(anyhow::Error::msg)?;
    let hash = password::hash_password(secret.clone()).await?;
    let state = AppState::build(config)?;
    let mut conn = state.pool.get().await.context("connecting to the database")?;
    let id = match users::create_user(&mut conn, &email, &hash, admin).await? {
        Some(id) => id,
        None if update => {
            let creds = users::credentials(&mut conn, &email).await?.context("user vanished")?;
            users::set_password(&mut conn, creds.id, &hash, admin).await?;
            // A new password or role ends every session of theirs, on every API process at once.
            let ended = users::sessions::end_all(&mut conn, creds.id, None).await?;
            if ended > 0 {
                println!("signed out of {ended} session(s)");
            }
            creds.id
        }
        None => anyhow::bail!("a user {} exists (use --update to change the password)", email.as_str()),
    };
    println!("user {} (id {id}){}", email.as_str(), if admin { ", administrator" } else { "" });
    if generated {
        println!("password: {}  (shown once)", secret.expose_secret());
    }
    Ok(())
}
