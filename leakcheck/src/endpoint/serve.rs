//! [`serve`]: the endpoint on a server of its own (hyper), for services
//! with no HTTP stack: its own thread and runtime, loopback by default.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::task::Poll;
use std::thread::JoinHandle;

use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::oneshot;
use tower::ServiceExt;

use super::auth;
use super::routes::{self, Shared};
use crate::tracker::Tracker;

/// Where and how [`serve`] listens.
///
/// By default: `127.0.0.1:6060`, no token. A non-loopback address needs
/// [`allow_remote`](ServeOptions::allow_remote) and a
/// [`token`](ServeOptions::token), which every request must then send as
/// `Authorization: Bearer <token>`.
///
/// ```
/// let options = leakcheck::ServeOptions::new()
///     .addr("0.0.0.0:6060".parse().unwrap())
///     .allow_remote()
///     .token("s3cret");
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct ServeOptions {
    addr: SocketAddr,
    allow_remote: bool,
    token: Option<String>,
    runtime: Option<Handle>,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 6060)),
            allow_remote: false,
            token: None,
            runtime: None,
        }
    }
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("addr", &self.addr)
            .field("allow_remote", &self.allow_remote)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("runtime", &self.runtime.is_some())
            .finish()
    }
}

impl ServeOptions {
    /// `127.0.0.1:6060`, no token.
    ///
    /// ```
    /// # let _ = leakcheck::ServeOptions::new();
    /// ```
    pub fn new() -> ServeOptions {
        ServeOptions::default()
    }

    /// The address to listen on; port 0 picks a free port (see
    /// [`Server::local_addr`]).
    ///
    /// ```
    /// let options = leakcheck::ServeOptions::new().addr("127.0.0.1:0".parse().unwrap());
    /// # let _ = options;
    /// ```
    pub fn addr(mut self, addr: SocketAddr) -> ServeOptions {
        self.addr = addr;
        self
    }

    /// Allows an address other machines can reach (`0.0.0.0`, a public
    /// interface). Needs a [`token`](ServeOptions::token) as well: task
    /// dumps show your code's structure.
    ///
    /// ```
    /// let options = leakcheck::ServeOptions::new().allow_remote().token("s3cret");
    /// # let _ = options;
    /// ```
    pub fn allow_remote(mut self) -> ServeOptions {
        self.allow_remote = true;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every request (401
    /// otherwise). Also allowed on loopback. `Debug` does not print it.
    ///
    /// ```
    /// let options = leakcheck::ServeOptions::new().token("s3cret");
    /// assert!(!format!("{options:?}").contains("s3cret"));
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> ServeOptions {
        self.token = Some(token.into());
        self
    }

    /// The runtime `GET /debug/runtime` reports on. Default: the runtime
    /// [`serve`] is called from, if any.
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let options = leakcheck::ServeOptions::new().runtime(rt.handle().clone());
    /// # let _ = options;
    /// ```
    pub fn runtime(mut self, handle: Handle) -> ServeOptions {
        self.runtime = Some(handle);
        self
    }

    /// Refuses the unsafe combinations, with a message that says what to do.
    fn check(&self) -> io::Result<()> {
        let refuse = |message: String| Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        let token_set = self.token.as_deref().is_some_and(|t| !t.is_empty());
        if !self.addr.ip().is_loopback() && !self.allow_remote {
            return refuse(format!(
                "leakcheck::serve: refusing to listen on {}, which other machines can reach: \
                 use a loopback address (127.0.0.1), or opt in with \
                 ServeOptions::allow_remote() and a token (ServeOptions::token)",
                self.addr
            ));
        }
        if self.allow_remote && !token_set {
            return refuse(
                "leakcheck::serve: allow_remote() needs a non-empty token \
                 (ServeOptions::token): every request must then send \
                 `Authorization: Bearer <token>`"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// A running [`serve`] server. Stops when [`shutdown`](Server::shutdown) is
/// called or the handle is dropped.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let options = leakcheck::ServeOptions::new().addr("127.0.0.1:0".parse().unwrap());
/// let server = leakcheck::serve(tracker, options)?;
/// assert!(server.url().starts_with("http://127.0.0.1:"));
/// server.shutdown();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// The address it listens on (with the port picked for port 0).
    ///
    /// ```
    /// # let tracker = leakcheck::instrument(&mut tokio::runtime::Builder::new_current_thread());
    /// let server = leakcheck::serve(tracker, leakcheck::ServeOptions::new().addr("127.0.0.1:0".parse().unwrap())).unwrap();
    /// assert_ne!(server.local_addr().port(), 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<local_addr>/debug`, where the routes are.
    ///
    /// ```
    /// # let tracker = leakcheck::instrument(&mut tokio::runtime::Builder::new_current_thread());
    /// let server = leakcheck::serve(tracker, leakcheck::ServeOptions::new().addr("127.0.0.1:0".parse().unwrap())).unwrap();
    /// assert!(server.url().ends_with("/debug"));
    /// ```
    pub fn url(&self) -> String {
        format!("http://{}/debug", self.local_addr)
    }

    /// Stops accepting, drops open connections and waits for the server's
    /// thread to end (a response being built is abandoned).
    ///
    /// ```
    /// # let tracker = leakcheck::instrument(&mut tokio::runtime::Builder::new_current_thread());
    /// let server = leakcheck::serve(tracker, leakcheck::ServeOptions::new().addr("127.0.0.1:0".parse().unwrap())).unwrap();
    /// let addr = server.local_addr();
    /// server.shutdown();
    /// assert!(std::net::TcpStream::connect(addr).is_err());
    /// ```
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves the endpoint's routes under `/debug` on a server of its own, for
/// services with no HTTP stack: binds now (the error says why not), then
/// serves from a thread with its own small runtime, so the endpoint's own
/// tasks never show up among `tracker`'s.
///
/// Listens on loopback unless the options opt in to more, with a token;
/// see [`ServeOptions`].
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// let tracker = leakcheck::instrument(&mut builder);
/// let rt = builder.enable_all().build()?;
/// let _guard = rt.enter(); // so that /debug/runtime reads this runtime
/// let server = leakcheck::serve(tracker, leakcheck::ServeOptions::new().addr("127.0.0.1:0".parse().unwrap()))?;
/// println!("task dumps at {}/tasks", server.url());
/// # Ok(())
/// # }
/// ```
///
/// A public address without the opt-in is refused:
///
/// ```
/// let tracker = leakcheck::instrument(&mut tokio::runtime::Builder::new_current_thread());
/// let options = leakcheck::ServeOptions::new().addr("0.0.0.0:0".parse().unwrap());
/// let err = leakcheck::serve(tracker, options).unwrap_err();
/// assert!(err.to_string().contains("allow_remote"), "{err}");
/// ```
pub fn serve(tracker: Tracker, options: ServeOptions) -> io::Result<Server> {
    options.check()?;
    let runtime = options
        .runtime
        .clone()
        .or_else(|| Handle::try_current().ok());
    let listener = StdListener::bind(options.addr)?;
    let local_addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let own = Builder::new_current_thread().enable_all().build()?;
    let listener = {
        let _in_runtime = own.enter();
        TcpListener::from_std(listener)?
    };
    let app = Router::new()
        .nest(
            "/debug",
            routes::router(Shared::new(tracker, runtime, false)),
        )
        .fallback(routes::not_found);
    let token: Option<Arc<str>> = options.token.map(Arc::from);
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("leakcheck-endpoint".to_owned())
        .spawn(move || run(own, listener, app, token, stopped))?;
    Ok(Server {
        local_addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// The server's thread: accepts until told to stop, one task per connection.
fn run(
    own: Runtime,
    listener: TcpListener,
    app: Router,
    token: Option<Arc<str>>,
    mut stopped: oneshot::Receiver<()>,
) {
    own.block_on(async {
        loop {
            let next = poll_fn(|cx| {
                if std::pin::Pin::new(&mut stopped).poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                listener.poll_accept(cx).map(Some)
            });
            match next.await {
                None => return,
                Some(Ok((stream, _))) => {
                    tokio::spawn(connection(stream, app.clone(), token.clone()));
                }
                // out of file descriptors and the like: the next accept may work
                Some(Err(_)) => tokio::task::yield_now().await,
            }
        }
    });
    own.shutdown_background();
}

async fn connection(stream: tokio::net::TcpStream, app: Router, token: Option<Arc<str>>) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (app, token) = (app.clone(), token.clone());
        async move {
            if !auth::allowed(request.headers(), token.as_deref()) {
                return Ok::<_, Infallible>(auth::unauthorized());
            }
            app.oneshot(request).await
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
