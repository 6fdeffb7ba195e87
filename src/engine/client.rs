//! The client task: one async task per logged-in user that carries out its [`Driver`]'s
//! outputs (the socket, the call's media, the ringtone, device listing) and feeds it what
//! happens, each with the time from the kit's clock. A demo peer's [`Script`] runs here too.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::kit::CallKit;
use crate::media::{MediaConfig, MediaReport, MediaSession, Ringing, Ringtone, list_devices};
use crate::model::{CallStatus, MonoTime};
use crate::signaling::{ClientMessage, PROTOCOL_VERSION};
use crate::timeline::Clock;

use super::connection::{Incoming, Socket};
use super::demo::Script;
use super::driver::{CallIds, Driver, DriverConfig, Output, random_call_id};
use super::messages::EngineCommand;
use super::state::Reports;

/// Media reports waiting for the client; best-effort ones beyond it are dropped and counted.
const MEDIA_REPORTS: usize = 1024;

/// How a client logs in.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://host:port` of the signaling server, or of several nodes separated by commas:
    /// they are tried in turn, the next one after a connection attempt fails.
    pub server_url: String,
    /// Who logs in.
    pub user_id: String,
    /// Its UserSig.
    pub user_sig: String,
    /// How calls carry audio and video; `None` for signaling only.
    pub media: Option<MediaConfig>,
    /// Ask the server for its records of how it routes our calls (the server's side of each
    /// call trace).
    pub server_traces: bool,
    /// Share our entries of each call with its other participants (who asked for traces).
    pub share_traces: bool,
}

type Connecting = Pin<Box<dyn Future<Output = Result<Socket, String>> + Send>>;

/// What the task holds besides the driver.
struct Task {
    config: ClientConfig,
    clock: Clock,
    reports: Reports,
    socket: Option<Socket>,
    connecting: Option<Connecting>,
    media: Option<MediaSession>,
    media_reports: mpsc::Sender<MediaReport>,
    devices: mpsc::Sender<crate::media::DeviceList>,
    ringtone: Option<Ringtone>,
    published: u64,
    entries_seen: u64,
    /// The server URLs, and which one is tried now.
    servers: Vec<String>,
    server: usize,
}

/// The URLs of `--server`: one, or several separated by commas.
pub fn server_urls(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs a client until it is told to shut down or its command channel closes. `script` makes
/// it a demo peer.
pub async fn run_client(
    config: ClientConfig,
    kit: CallKit,
    mut commands: mpsc::Receiver<EngineCommand>,
    reports: Reports,
    mut script: Option<Script>,
) {
    let clock = *kit.clock();
    let driver_config = DriverConfig {
        user_id: config.user_id.clone(),
        user_sig: config.user_sig.clone(),
        media: config.media.is_some(),
        server_traces: config.server_traces || config.share_traces,
        share_traces: config.share_traces,
    };
    let call_ids: CallIds = Box::new(random_call_id);
    let mut driver = Driver::new(driver_config, kit, call_ids, clock.now());
    let (media_reports, mut media_rx) = mpsc::channel(MEDIA_REPORTS);
    let (devices, mut devices_rx) = mpsc::channel(1);
    let mut task = Task {
        clock,
        reports,
        socket: None,
        connecting: None,
        media: None,
        media_reports,
        devices,
        ringtone: None,
        published: 0,
        entries_seen: 0,
        servers: server_urls(&config.server_url),
        server: 0,
        config,
    };
    loop {
        if !task.carry_out(&mut driver).await {
            return;
        }
        task.report(&driver);
        if let Some(script) = &mut script {
            script.observe(task.clock.now(), driver.state());
        }
        let deadline = [
            driver.poll_timeout(),
            script.as_ref().and_then(Script::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            command = commands.recv() => {
                let command = command.unwrap_or(EngineCommand::Shutdown);
                driver.handle_command(task.clock.now(), command);
            }
            connected = poll_connecting(&mut task.connecting) => {
                task.connecting = None;
                match connected {
                    Ok(socket) => {
                        task.socket = Some(socket);
                        driver.handle_connected(task.clock.now());
                    }
                    Err(reason) => {
                        // The next node is tried next time.
                        task.server = (task.server + 1) % task.servers.len().max(1);
                        driver.handle_lost(task.clock.now(), &reason);
                    }
                }
            }
            incoming = next_incoming(task.socket.as_mut()) => {
                let now = task.clock.now();
                match incoming {
                    Incoming::Message(message) => driver.handle_server(now, message),
                    Incoming::Malformed(reason) => driver.handle_malformed(now, &reason),
                    Incoming::Closed(reason) => {
                        task.socket = None;
                        driver.handle_lost(now, &reason);
                    }
                }
            }
            Some(report) = media_rx.recv() => driver.handle_media(task.clock.now(), report),
            Some(list) = devices_rx.recv() => driver.handle_devices(list),
            () = sleep_until(&task.clock, deadline) => {
                let now = task.clock.now();
                driver.handle_timeout(now);
                if let Some(command) = script.as_mut().and_then(|script| script.handle_timeout(now)) {
                    driver.handle_command(now, command);
                }
            }
        }
    }
}

async fn poll_connecting(connecting: &mut Option<Connecting>) -> Result<Socket, String> {
    match connecting {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn next_incoming(socket: Option<&mut Socket>) -> Incoming {
    match socket {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(clock: &Clock, at: Option<MonoTime>) {
    match at {
        Some(at) => {
            tokio::time::sleep_until(tokio::time::Instant::from_std(clock.instant_of(at))).await;
        }
        None => std::future::pending().await,
    }
}

impl Task {
    fn current_server(&self) -> String {
        self.servers
            .get(self.server)
            .cloned()
            .unwrap_or_else(|| self.config.server_url.clone())
    }

    /// Carries out the driver's outputs; false once it has stopped.
    async fn carry_out(&mut self, driver: &mut Driver) -> bool {
        while let Some(output) = driver.poll_output() {
            match output {
                Output::Send(message) => {
                    if let Some(socket) = &mut self.socket
                        && let Err(reason) = socket.send(&message).await
                    {
                        self.socket = None;
                        driver.handle_lost(self.clock.now(), &format!("sending failed: {reason}"));
                    }
                }
                Output::Connect => {
                    let url = self.current_server();
                    self.connecting = Some(Box::pin(async move { Socket::connect(&url).await }));
                }
                Output::Disconnect => {
                    if let Some(socket) = self.socket.take() {
                        socket.close().await;
                    }
                }
                Output::MediaOpen { call_id } => self.open_media(&call_id, driver),
                Output::Media(command) => {
                    if let Some(media) = &mut self.media {
                        media.apply(command);
                    }
                }
                Output::MediaClose => self.media = None,
                Output::LoginElsewhere => self.log_in_elsewhere(),
                Output::ListDevices => self.list_devices(),
                Output::ChooseDevices(choices) => {
                    if let Some(media) = &mut self.config.media {
                        media.camera = choices.camera;
                        media.microphone = choices.microphone;
                        media.speaker = choices.speaker;
                        media.audio_processing = choices.audio_processing;
                    }
                }
                Output::Impair(plan) => {
                    if let Some(media) = &mut self.config.media {
                        media.link = plan.clone();
                    }
                    if let Some(media) = &mut self.media {
                        media.apply(crate::media::MediaCommand::Impair(plan));
                    }
                }
                Output::PrivateRinging(private) => {
                    if let Some(media) = &mut self.config.media {
                        media.ringing = Ringing::private(private);
                    }
                }
                Output::Notice(text) => self.reports.notice(text),
                Output::Stop => {
                    self.media = None;
                    if let Some(socket) = self.socket.take() {
                        socket.close().await;
                    }
                    self.reports.state(driver.generation(), driver.state());
                    return false;
                }
            }
        }
        true
    }

    fn open_media(&mut self, call_id: &str, driver: &Driver) {
        if let Some(config) = &self.config.media {
            self.media = Some(MediaSession::new(
                call_id,
                driver.user_id(),
                config.clone(),
                self.clock,
                self.media_reports.clone(),
            ));
        }
    }

    /// Publishes a changed state, rings while an invitation waits, and wakes the reader when
    /// entries were recorded.
    fn report(&mut self, driver: &Driver) {
        if driver.generation() != self.published {
            self.published = driver.generation();
            self.reports.state(self.published, driver.state());
            self.ring(driver.state().call.status() == CallStatus::BeInvited);
        }
        let last = driver.kit().timeline().last_seq();
        if last != self.entries_seen {
            self.entries_seen = last;
            self.reports.wake();
        }
    }

    /// Rings while an invitation is waiting, if this client has a ringtone (and a speaker).
    fn ring(&mut self, ringing: bool) {
        match &self.config.media {
            Some(media) if media.ringtone && ringing && self.ringtone.is_none() => {
                // Without a speaker the invitation is silent; the banner still shows it.
                self.ringtone = Ringtone::start(&media.speaker, media.devices).ok();
            }
            _ if !ringing => self.ringtone = None,
            _ => {}
        }
    }

    fn list_devices(&self) {
        let devices = self.devices.clone();
        let which = self
            .config
            .media
            .as_ref()
            .map(|media| media.devices)
            .unwrap_or_default();
        // Asking the system for devices may block; it runs off the client's task.
        tokio::task::spawn_blocking(move || {
            let _ = devices.blocking_send(list_devices(which));
        });
    }

    /// Logs the same user in from a second connection, as another device would.
    fn log_in_elsewhere(&self) {
        let url = self.current_server();
        let login = ClientMessage::Login {
            version: PROTOCOL_VERSION,
            user_id: self.config.user_id.clone(),
            user_sig: self.config.user_sig.clone(),
        };
        tokio::spawn(async move {
            if let Ok(mut socket) = Socket::connect(&url).await {
                let _ = socket.send(&login).await;
                // Stay long enough for the server to kick the first session.
                tokio::time::sleep(Duration::from_secs(2)).await;
                socket.close().await;
            }
        });
    }
}

/// A kit for a demo peer: its timeline is kept in memory and stays small.
pub fn demo_kit(user_id: &str, clock: Clock) -> CallKit {
    CallKit::builder()
        .user(user_id)
        .clock(clock)
        .timeline(crate::timeline::Timeline::in_memory().with_memory_capacity(DEMO_TIMELINE))
        .build()
}

/// Entries a demo peer keeps in memory.
const DEMO_TIMELINE: usize = 10_000;
