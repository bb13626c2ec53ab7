//! Integration tests: the real server on a random port with a fresh data dir, driven over HTTP
//! the way a browser, a bot or an attacker would. Logs are silent unless `TEST_LOG` is set.

mod helpers;

mod changes;
mod csrf;
mod login;
mod push;
mod read_state;
mod realtime;
mod rooms;
mod session;
mod signup;
mod site;
mod throttle;
mod tokens;
mod uploads;
