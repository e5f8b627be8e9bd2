//! Mutual TLS between nodes, with real certificates generated here by rcgen: what must work
//! works, and every kind of client the issue names as refused is refused (and counted).
//!
//! The certificates are made in this file rather than with the crate's `dev-certs` helper,
//! so the test checks the `node-<id>` convention independently of the code under test.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use replication_core::transport::{
    node_server_name, Connection, Frame, Listener, ListenerMetrics, PeerInfo, RemoteError,
    RpcClient, RpcClientOptions, RpcError, RpcServer, TlsIdentity, TlsSettings, TransportError,
    TransportSecurity,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

struct NodeCert {
    cert_pem: String,
    key_pem: String,
}

fn new_ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn node_cert(ca: &Ca, id: u64) -> NodeCert {
    let mut params =
        CertificateParams::new(vec![format!("node-{id}"), "localhost".into()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("node-{id}"));
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    NodeCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn identity(ca: &Ca, id: u64) -> TransportSecurity {
    let n = node_cert(ca, id);
    TransportSecurity::tls(
        TlsIdentity::from_pem(
            n.cert_pem.as_bytes(),
            n.key_pem.as_bytes(),
            ca.pem.as_bytes(),
        )
        .unwrap(),
    )
}

fn write_files(dir: &Path, ca: &Ca, id: u64) -> TlsSettings {
    let n = node_cert(ca, id);
    let settings = TlsSettings {
        cert_path: dir.join(format!("node-{id}.pem")),
        key_path: dir.join(format!("node-{id}.key")),
        ca_path: dir.join("ca.pem"),
    };
    std::fs::write(&settings.cert_path, n.cert_pem).unwrap();
    std::fs::write(&settings.key_path, n.key_pem).unwrap();
    std::fs::write(&settings.ca_path, &ca.pem).unwrap();
    settings
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An RPC server whose handler answers "<peer node id>:<kind>:<payload>" and counts calls.
async fn echo_server(security: TransportSecurity) -> (RpcServer, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let listener = Listener::bind(localhost(), security).await.unwrap();
    let server = RpcServer::spawn(listener, move |peer: PeerInfo, kind, payload: Bytes| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let text = format!(
                "{:?}:{kind}:{}",
                peer.node_id,
                String::from_utf8_lossy(&payload)
            );
            Ok::<_, RemoteError>(Bytes::from(text))
        }
    });
    (server, calls)
}

/// Waits (coarsely bounded) until the listener has refused `n` handshakes.
async fn wait_refused(metrics: &ListenerMetrics, n: u64) {
    for _ in 0..500 {
        if metrics.refused_handshakes.load(Ordering::SeqCst) >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.refused_handshakes.load(Ordering::SeqCst), n);
}

fn quick() -> RpcClientOptions {
    RpcClientOptions {
        request_timeout: Duration::from_secs(5),
        ..RpcClientOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_rpc_round_trip_with_node_identities() {
    let ca = new_ca("cluster A");
    let dir = tempfile::tempdir().unwrap();
    // The server loads its material from files, as a node does from its config.
    let server_identity = write_files(dir.path(), &ca, 1).load().unwrap();
    assert_eq!(server_identity.node_id(), Some(1));
    let (server, calls) = echo_server(TransportSecurity::tls(server_identity)).await;

    let client = RpcClient::connect(
        server.local_addr(),
        &identity(&ca, 2),
        &node_server_name(1),
        quick(),
    )
    .await
    .unwrap();
    // Each side knows who the other is, from the verified certificate.
    assert_eq!(client.peer().node_id, Some(1));
    assert!(client.peer().authenticated);
    let reply = client.call(7, Bytes::from_static(b"ping")).await.unwrap();
    assert_eq!(&reply[..], b"Some(2):7:ping");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let m = server.listener_metrics().snapshot();
    assert_eq!((m.accepted, m.refused_handshakes), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_certificate_for_another_node_is_refused_by_the_client() {
    let ca = new_ca("cluster A");
    let (server, _) = echo_server(identity(&ca, 1)).await;
    let err = Connection::connect(server.local_addr(), &identity(&ca, 2), &node_server_name(3))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Handshake { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_certificate_is_refused() {
    let ca = new_ca("cluster A");
    let (server, calls) = echo_server(identity(&ca, 1)).await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let outcome = async {
        // In TLS 1.3 the client may believe the handshake done before the server has judged
        // its (absent) certificate; the refusal then shows on the first read.
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("node-1").unwrap(), tcp)
            .await?;
        let frame = Frame::request(1, 1, Bytes::from_static(b"hello"));
        tls.write_all(&frame.encode(1024).unwrap()).await?;
        tls.flush().await?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await?;
        Ok::<usize, std::io::Error>(n)
    }
    .await;
    assert!(
        matches!(outcome, Err(_) | Ok(0)),
        "the server answered a client without a certificate: {outcome:?}"
    );
    wait_refused(&server.listener_metrics(), 1).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(server.listener_metrics().snapshot().accepted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_from_another_ca_is_refused() {
    let ca = new_ca("cluster A");
    let rogue_ca = new_ca("cluster B");
    let (server, calls) = echo_server(identity(&ca, 1)).await;
    // The rogue client trusts cluster A (so it accepts the server) but its own certificate,
    // though it claims to be node 2, is issued by cluster B.
    let rogue = node_cert(&rogue_ca, 2);
    let rogue_security = TransportSecurity::tls(
        TlsIdentity::from_pem(
            rogue.cert_pem.as_bytes(),
            rogue.key_pem.as_bytes(),
            ca.pem.as_bytes(),
        )
        .unwrap(),
    );
    let result = async {
        let client =
            RpcClient::connect(server.local_addr(), &rogue_security, "node-1", quick()).await?;
        client.call(1, Bytes::from_static(b"vote for me")).await
    }
    .await;
    assert!(result.is_err(), "rogue client got an answer: {result:?}");
    wait_refused(&server.listener_metrics(), 1).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_client_to_tls_listener_is_refused() {
    let ca = new_ca("cluster A");
    let (server, calls) = echo_server(identity(&ca, 1)).await;
    let plaintext = TransportSecurity::plaintext_for_development();
    let client = RpcClient::connect(server.local_addr(), &plaintext, "node-1", quick())
        .await
        .unwrap();
    let err = client
        .call(1, Bytes::from_static(b"hello"))
        .await
        .unwrap_err();
    // The TLS server answers with an alert (not a frame) and closes: the client sees a
    // protocol error or a closed connection, never a timeout or an answer.
    assert!(matches!(err, RpcError::Closed { .. }), "{err}");
    wait_refused(&server.listener_metrics(), 1).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_client_is_refused_even_with_a_valid_certificate() {
    let ca = new_ca("cluster A");
    let (server, calls) = echo_server(identity(&ca, 1)).await;
    let n = node_cert(&ca, 2);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from_pem_slice(n.cert_pem.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(n.key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let result = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("node-1").unwrap(), tcp)
        .await;
    let Err(err) = result else {
        panic!("a TLS 1.2 handshake succeeded");
    };
    assert!(
        err.to_string().to_lowercase().contains("protocol")
            || err.to_string().to_lowercase().contains("version"),
        "unexpected error: {err}"
    );
    wait_refused(&server.listener_metrics(), 1).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_works_only_between_plaintext_ends() {
    let dev = TransportSecurity::plaintext_for_development();
    let (server, calls) = echo_server(dev.clone()).await;
    let client = RpcClient::connect(server.local_addr(), &dev, "ignored", quick())
        .await
        .unwrap();
    assert!(!client.peer().authenticated);
    assert_eq!(client.peer().node_id, None);
    let reply = client.call(3, Bytes::from_static(b"dev")).await.unwrap();
    // No certificate, so the server cannot name the peer.
    assert_eq!(&reply[..], b"None:3:dev");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A TLS node does not fall back to plaintext when the other end speaks it.
    let ca = new_ca("cluster A");
    let err = Connection::connect(server.local_addr(), &identity(&ca, 2), "node-1")
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Handshake { .. }), "{err}");
}

/// `openssl s_client`, a client we did not write, against the TLS listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_tls12_refused_and_tls13_with_certificate_accepted() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        eprintln!("note: openssl CLI not found; skipping the s_client checks");
        return;
    }
    let ca = new_ca("cluster A");
    let dir = tempfile::tempdir().unwrap();
    let server_settings = write_files(dir.path(), &ca, 1);
    let client_settings = write_files(dir.path(), &ca, 2);
    let (server, calls) =
        echo_server(TransportSecurity::tls(server_settings.load().unwrap())).await;
    let port = server.local_addr().port();
    let metrics = server.listener_metrics();

    let s_client = move |extra: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let mut args: Vec<String> = vec![
                "s_client".into(),
                "-connect".into(),
                format!("127.0.0.1:{port}"),
                "-servername".into(),
                "node-1".into(),
            ];
            args.extend(extra);
            let out = std::process::Command::new("openssl")
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), text)
        })
    };
    let ca_path = client_settings.ca_path.display().to_string();
    let cert_path = client_settings.cert_path.display().to_string();
    let key_path = client_settings.key_path.display().to_string();
    let with_cert = |version: &str| -> Vec<String> {
        vec![
            version.into(),
            "-CAfile".into(),
            ca_path.clone(),
            "-cert".into(),
            cert_path.clone(),
            "-key".into(),
            key_path.clone(),
            "-verify_return_error".into(),
        ]
    };

    // TLS 1.2, even with a valid client certificate: refused.
    let (ok, text) = s_client(with_cert("-tls1_2")).await.unwrap();
    assert!(!ok, "openssl -tls1_2 succeeded:\n{text}");
    // The server's answer is the TLS "protocol_version" alert (70); no cipher was agreed.
    assert!(text.contains("Cipher is (NONE)"), "{text}");
    assert!(text.contains("alert protocol version"), "{text}");
    wait_refused(&metrics, 1).await;

    // TLS 1.3 with the node certificate: the handshake completes and the server accepts.
    let (ok, text) = s_client(with_cert("-tls1_3")).await.unwrap();
    assert!(ok, "openssl -tls1_3 failed:\n{text}");
    assert!(text.contains("TLSv1.3"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    for _ in 0..500 {
        if metrics.accepted.load(Ordering::SeqCst) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(metrics.refused_handshakes.load(Ordering::SeqCst), 1);

    // TLS 1.3 without a client certificate: refused by the server.
    let _ = s_client(vec!["-tls1_3".into(), "-CAfile".into(), ca_path.clone()])
        .await
        .unwrap();
    wait_refused(&metrics, 2).await;
    assert_eq!(metrics.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
