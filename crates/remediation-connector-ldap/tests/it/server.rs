//! A private slapd for each test: generated slapd.conf, seeded mdb database, loopback port,
//! killed when the guard drops.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use remediation_testkit::tls::PkiFiles;
use tempfile::TempDir;

/// Suffix of the test directory.
pub(crate) const BASE: &str = "dc=example,dc=org";
/// The administrator (rootdn), used only by tests to change things behind the connector's back.
pub(crate) const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
/// Its password.
pub(crate) const ADMIN_PASSWORD: &str = "admin-Secret-4711";
/// The connector's service account, with the least privileges the README documents.
pub(crate) const WRITER_DN: &str = "cn=remediator,ou=services,dc=example,dc=org";
/// Its password.
pub(crate) const WRITER_PASSWORD: &str = "writer-Secret-0815";
/// A service account that may read everything and write nothing.
pub(crate) const READER_DN: &str = "cn=reader,ou=services,dc=example,dc=org";
/// Its password.
pub(crate) const READER_PASSWORD: &str = "reader-Secret-2342";

/// Every seeded user's password.
pub(crate) const USER_PASSWORD: &str = "user-Secret-1234";

/// The AD-style attribute and an auxiliary class to carry it, so the Active Directory dialect
/// runs against the same server. The attribute keeps AD's own OID.
const AD_SCHEMA: &str = "\
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
    DESC 'Active Directory account flags'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'adUserAccount' AUXILIARY
    DESC 'Carries userAccountControl for tests' MAY userAccountControl )
";

/// The ACL is the one the README recommends, with `reader` as a plain authenticated user.
/// With `tls`, the server offers `ldaps://` and StartTLS with that certificate and refuses a
/// simple bind over a connection without TLS (`confidentialityRequired`).
fn slapd_conf(dir: &Path, tls: Option<&PkiFiles>) -> String {
    let d = dir.display();
    let tls = tls.map_or_else(String::new, |f| {
        format!(
            "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\nsecurity simple_bind=128\n",
            f.ca.display(),
            f.cert.display(),
            f.key.display()
        )
    });
    format!(
        r#"{tls}include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {d}/ad.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {d}/slapd.pid
argsfile {d}/slapd.args

database mdb
maxsize 10485760
suffix "{BASE}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {d}/db
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{BASE}"

access to dn.subtree="ou=groups,{BASE}" attrs=member,uniqueMember,memberUid
    by dn.exact="{WRITER_DN}" write
    by users read
access to dn.subtree="ou=people,{BASE}" attrs=pwdAccountLockedTime,userAccountControl
    by dn.exact="{WRITER_DN}" write
    by users read
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by users read
    by * none
"#
    )
}

/// People: `uid=<name>,ou=people`. Every user carries `userAccountControl: 512` so either
/// dialect can act on any of them.
const USERS: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "breakglass",
    "*",
    "x)(uid=*",
];

fn user_entry(uid: &str) -> String {
    format!(
        "dn: {}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
         objectClass: adUserAccount\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuidNumber: 1000\ngidNumber: 1000\n\
         homeDirectory: /home/u\nuserAccountControl: 512\nuserPassword: {USER_PASSWORD}\n\n",
        user(uid)
    )
}

/// The DN of a seeded user.
pub(crate) fn user(uid: &str) -> String {
    // RFC 4514 escaping of the characters the seeded names use; '=' and '*' need none but '='
    // is escaped anyway so no parser can mistake it for a separator.
    let rdn = uid.replace('\\', "\\5c").replace('=', "\\3d").replace(',', "\\2c");
    format!("uid={rdn},ou=people,{BASE}")
}

/// The DN of a seeded group.
pub(crate) fn group(cn: &str) -> String {
    format!("cn={cn},ou=groups,{BASE}")
}

fn seed() -> String {
    let mut ldif = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: ou=policies,{BASE}\nobjectClass: organizationalUnit\nou: policies\n\n\
         dn: cn=default,ou=policies,{BASE}\nobjectClass: organizationalRole\nobjectClass: pwdPolicy\n\
         cn: default\npwdAttribute: userPassword\npwdLockout: TRUE\n\n\
         dn: {WRITER_DN}\nobjectClass: person\ncn: remediator\nsn: remediator\nuserPassword: {WRITER_PASSWORD}\n\n\
         dn: {READER_DN}\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: {READER_PASSWORD}\n\n"
    );
    for u in USERS {
        ldif.push_str(&user_entry(u));
    }
    // A DN with an escaped comma in its RDN value.
    ldif.push_str(&format!(
        "dn: cn=Doe\\, John,ou=people,{BASE}\nobjectClass: inetOrgPerson\nobjectClass: adUserAccount\n\
         cn: Doe, John\nsn: Doe\nuserAccountControl: 512\n\n"
    ));
    let groups: &[(&str, &str, &[&str])] = &[
        ("engineering", "groupOfNames", &["alice", "bob", "grace"]),
        ("finance", "groupOfNames", &["carol", "grace", "judy"]),
        ("ops", "groupOfUniqueNames", &["carol", "dave", "grace"]),
        ("devs", "posixGroup", &["erin", "frank", "grace"]),
        ("solo", "groupOfNames", &["frank"]),
        ("admins", "groupOfNames", &["breakglass", "heidi"]),
        ("wheel", "posixGroup", &["ivan"]),
    ];
    for (cn, class, members) in groups {
        ldif.push_str(&format!("dn: {}\nobjectClass: {class}\ncn: {cn}\n", group(cn)));
        for m in *members {
            match *class {
                "groupOfNames" => ldif.push_str(&format!("member: {}\n", user(m))),
                "groupOfUniqueNames" => ldif.push_str(&format!("uniqueMember: {}\n", user(m))),
                _ => ldif.push_str(&format!("memberUid: {m}\n")),
            }
        }
        if *class == "posixGroup" {
            ldif.push_str("gidNumber: 2000\n");
        }
        ldif.push('\n');
    }
    ldif.push_str(&format!(
        "dn: {}\nobjectClass: groupOfNames\ncn: escaped\nmember: cn=Doe\\, John,ou=people,{BASE}\nmember: {}\n\n",
        group("escaped"),
        user("alice")
    ));
    ldif
}

/// A loopback port no other server of this test binary uses. Asking the kernel for port 0
/// each time could hand two tests starting together the same port before either slapd binds it.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(0, 20_000 + (std::process::id() % 20_000) as u16, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running slapd; killed on drop.
pub(crate) struct Slapd {
    dir: TempDir,
    child: Child,
    slapd: PathBuf,
    port: u16,
    /// What slapd's `-h` names: the URLs it listens on.
    listen: String,
    /// `ldap://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// `ldaps://localhost:<port>` when started with TLS.
    pub(crate) ldaps_url: Option<String>,
}

impl Slapd {
    /// Starts a seeded slapd, or prints why not and returns `None` when
    /// `REMEDIATION_TEST_SLAPD` is unset.
    pub(crate) fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// Starts a seeded slapd that also speaks TLS with the certificate of `pki`, or `None` as
    /// [`Slapd::start`].
    pub(crate) fn start_tls(pki: &remediation_testkit::tls::TestPki) -> Option<Self> {
        Self::start_with(Some(pki))
    }

    fn start_with(pki: Option<&remediation_testkit::tls::TestPki>) -> Option<Self> {
        let setting = remediation_testkit::real_server::require(
            "this LDAP test",
            "REMEDIATION_TEST_SLAPD",
            "the slapd program; `.ci/setup-slapd.sh` installs it and prints the line",
        )?;
        let slapd =
            if Path::new(&setting).is_file() { PathBuf::from(setting) } else { PathBuf::from("/usr/sbin/slapd") };
        let slapadd = slapd.with_file_name("slapadd");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        std::fs::write(dir.path().join("ad.schema"), AD_SCHEMA).unwrap();
        let files = pki.map(|p| p.write(dir.path()).unwrap());
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, slapd_conf(dir.path(), files.as_ref())).unwrap();
        let ldif = dir.path().join("seed.ldif");
        std::fs::write(&ldif, seed()).unwrap();
        let out = Command::new(&slapadd).arg("-f").arg(&conf).arg("-l").arg(&ldif).output().unwrap();
        assert!(out.status.success(), "slapadd failed: {}", String::from_utf8_lossy(&out.stderr));

        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let (listen, ldaps_url) = match files {
            Some(_) => {
                let tls_port = free_port();
                (format!("{url}/ ldaps://127.0.0.1:{tls_port}/"), Some(format!("ldaps://localhost:{tls_port}")))
            }
            None => (format!("{url}/"), None),
        };
        let child = spawn(&slapd, &conf, &listen);
        let mut server = Self { dir, child, slapd, port, listen, url, ldaps_url };
        server.wait_until_listening();
        Some(server)
    }

    fn wait_until_listening(&mut self) {
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("slapd exited with {status} before it listened on port {port}");
            }
            assert!(Instant::now() < deadline, "slapd did not listen on port {port} within 15 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server now and starts it again on the same port and data after `delay`, in
    /// the background; `wait` on the handle gives the server back its process.
    pub(crate) fn restart_in(&mut self, delay: Duration) -> Restart {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (slapd, conf, listen) = (self.slapd.clone(), self.dir.path().join("slapd.conf"), self.listen.clone());
        Restart(std::thread::spawn(move || {
            std::thread::sleep(delay);
            spawn(&slapd, &conf, &listen)
        }))
    }

    /// The folder holding the server's files; tests put password files here.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A server restart in progress.
pub(crate) struct Restart(std::thread::JoinHandle<Child>);

impl Restart {
    /// Waits for the restarted process and hands it to `server`.
    pub(crate) fn wait(self, server: &mut Slapd) {
        server.child = self.0.join().unwrap();
        server.wait_until_listening();
    }
}

fn spawn(slapd: &Path, conf: &Path, listen: &str) -> Child {
    Command::new(slapd)
        .arg("-f")
        .arg(conf)
        .arg("-h")
        .arg(listen)
        // -d keeps slapd in the foreground, so the guard owns the process.
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
