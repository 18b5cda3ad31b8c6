package wrap

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// catCase is one `systemctl cat` output and what it means. The same cases
// feed the probe's filter test: filtered, each must mean the same.
type catCase struct {
	name string
	out  string
	want UnitFile
	err  error
}

// catCases are outputs as systemctl cat prints them on RHCOS nodes:
// the unit file, then each drop-in after an empty line and a header.
func catCases() []catCase {
	return []catCase{
		{
			name: "plain unit",
			out: `# /usr/lib/systemd/system/chronyd.service
[Unit]
Description=NTP client/server
Documentation=man:chronyd(8) man:chrony.conf(5)
After=ntpdate.service sntp.service ntpd.service
Conflicts=ntpd.service systemd-timesyncd.service
ConditionCapability=CAP_SYS_TIME

[Service]
Type=forking
PIDFile=/run/chrony/chronyd.pid
EnvironmentFile=-/etc/sysconfig/chronyd
ExecStart=/usr/sbin/chronyd $OPTIONS
ExecStartPost=/usr/libexec/chrony-helper update-daemon
PrivateTmp=yes
ProtectHome=yes
ProtectSystem=full

[Install]
WantedBy=multi-user.target
`,
			want: UnitFile{
				Files:     []string{"/usr/lib/systemd/system/chronyd.service"},
				ExecStart: []string{"/usr/sbin/chronyd $OPTIONS"},
			},
		},
		{
			name: "drop-in resets and sets a new ExecStart",
			out: `# /usr/lib/systemd/system/rpc-statd.service
[Unit]
Description=NFS status monitor for NFSv2/3 locking.
DefaultDependencies=no

[Service]
Environment=RPC_STATD_NO_NOTIFY=1
Type=forking
PIDFile=/run/rpc.statd.pid
ExecStart=/usr/sbin/rpc.statd

# /etc/systemd/system/rpc-statd.service.d/override.conf
[Service]
ExecStart=
ExecStart=/usr/sbin/rpc.statd --no-notify -p 662
`,
			want: UnitFile{
				Files:     []string{"/usr/lib/systemd/system/rpc-statd.service", "/etc/systemd/system/rpc-statd.service.d/override.conf"},
				ExecStart: []string{"/usr/sbin/rpc.statd --no-notify -p 662"},
			},
		},
		{
			name: "drop-in with an Environment only",
			out: `# /usr/lib/systemd/system/crio.service
[Unit]
Description=Container Runtime Interface for OCI (CRI-O)
Documentation=https://github.com/cri-o/cri-o
Wants=network-online.target
Before=kubelet.service
After=network-online.target

[Service]
Type=notify
EnvironmentFile=-/etc/sysconfig/crio
Environment=GOTRACEBACK=crash
ExecStart=/usr/bin/crio \
          $CRIO_CONFIG_OPTIONS \
          $CRIO_RUNTIME_OPTIONS \
          $CRIO_STORAGE_OPTIONS \
          $CRIO_NETWORK_OPTIONS \
          $CRIO_METRICS_OPTIONS
ExecReload=/bin/kill -s HUP $MAINPID
TasksMax=infinity
LimitNOFILE=1048576
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target

# /etc/systemd/system/crio.service.d/10-mco-default-env.conf
[Service]
Environment="ENABLE_PROFILE_UNIX_SOCKET=true"
`,
			want: UnitFile{
				Files: []string{"/usr/lib/systemd/system/crio.service", "/etc/systemd/system/crio.service.d/10-mco-default-env.conf"},
				ExecStart: []string{"/usr/bin/crio " + strings.Repeat(" ", 11) + "$CRIO_CONFIG_OPTIONS " + strings.Repeat(" ", 11) +
					"$CRIO_RUNTIME_OPTIONS " + strings.Repeat(" ", 11) + "$CRIO_STORAGE_OPTIONS " + strings.Repeat(" ", 11) +
					"$CRIO_NETWORK_OPTIONS " + strings.Repeat(" ", 11) + "$CRIO_METRICS_OPTIONS"},
			},
		},
		{
			name: "a drop-in for every service, comments and all",
			out: `# /usr/lib/systemd/system/rpcbind.service
[Unit]
Description=RPC Bind
Documentation=man:rpcbind(8)
DefaultDependencies=no
RequiresMountsFor=/run/rpcbind

[Service]
Type=notify
# distro can provide a drop-in adding RPCBIND_OPTIONS=
EnvironmentFile=-/etc/sysconfig/rpcbind
ExecStart=/usr/bin/rpcbind $RPCBIND_OPTIONS -w -f

[Install]
WantedBy=multi-user.target

# /usr/lib/systemd/system/service.d/10-timeout-abort.conf
# This file is part of the systemd package.
# See https://fedoraproject.org/wiki/Changes/Shorter_Shutdown_Timer.
#
# To facilitate debugging when a service fails to stop cleanly,
# TimeoutStopFailureMode=abort is set to "crash" services that fail to stop in
# the time allotted. This will cause the service to be terminated with SIGABRT
# and a coredump to be generated.
#
# To undo this configuration change, create a mask file:
#   sudo mkdir -p /etc/systemd/system/service.d
#   sudo ln -sv /dev/null /etc/systemd/system/service.d/10-timeout-abort.conf

[Service]
TimeoutStopFailureMode=abort
`,
			want: UnitFile{
				Files:     []string{"/usr/lib/systemd/system/rpcbind.service", "/usr/lib/systemd/system/service.d/10-timeout-abort.conf"},
				ExecStart: []string{"/usr/bin/rpcbind $RPCBIND_OPTIONS -w -f"},
			},
		},
		{
			name: "several drop-ins, the last reset wins",
			out: `# /usr/lib/systemd/system/node-exporter.service
[Service]
ExecStart=/usr/bin/node_exporter
User=node-exp

# /etc/systemd/system/node-exporter.service.d/10-flags.conf
[Service]
ExecStart=
ExecStart=/usr/bin/node_exporter --collector.systemd

# /etc/systemd/system/node-exporter.service.d/20-root.conf
[Service]
User=

# /run/systemd/system/node-exporter.service.d/30-debug.conf
[Service]
ExecStart=
ExecStart=/usr/bin/node_exporter --collector.systemd --log.level=debug
`,
			want: UnitFile{
				Files: []string{
					"/usr/lib/systemd/system/node-exporter.service",
					"/etc/systemd/system/node-exporter.service.d/10-flags.conf",
					"/etc/systemd/system/node-exporter.service.d/20-root.conf",
					"/run/systemd/system/node-exporter.service.d/30-debug.conf",
				},
				ExecStart: []string{"/usr/bin/node_exporter --collector.systemd --log.level=debug"},
			},
		},
		{
			name: "continuation lines with a comment inside",
			out: `# /etc/systemd/system/agent.service
[Unit]
Description=Node agent

[Service]
ExecStart=/usr/local/bin/agent \
    --config=/etc/agent/config.yaml \
# the log level comes from /etc/sysconfig/agent
    --v=${AGENT_LOG_LEVEL}
Restart=always
`,
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/agent.service"},
				ExecStart: []string{"/usr/local/bin/agent      --config=/etc/agent/config.yaml      --v=${AGENT_LOG_LEVEL}"},
			},
		},
		{
			name: "oneshot with several ExecStart",
			out: `# /usr/lib/systemd/system/nodeip-configuration.service
[Unit]
Description=Writes IP address configuration so that kubelet and crio services select a valid node IP

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/mkdir -p /run/nodeip-configuration
ExecStart=/usr/bin/podman run --rm --net=host quay.io/openshift/baremetal-runtimecfg:latest node-ip set --retry-on-failure
ExecStart=/bin/systemctl daemon-reload
ExecStartPre=/bin/mkdir -p /run/nodeip-configuration
`,
			want: UnitFile{
				Files: []string{"/usr/lib/systemd/system/nodeip-configuration.service"},
				ExecStart: []string{
					"/usr/bin/mkdir -p /run/nodeip-configuration",
					"/usr/bin/podman run --rm --net=host quay.io/openshift/baremetal-runtimecfg:latest node-ip set --retry-on-failure",
					"/bin/systemctl daemon-reload",
				},
			},
		},
		{
			name: "prefixes kept as written",
			out: `# /etc/systemd/system/prefixes.service
[Service]
Type=oneshot
ExecStart=-/usr/bin/may-fail
ExecStart=@/usr/bin/daemon my-argv0 --flag
ExecStart=+/usr/bin/privileged
ExecStart=!/usr/bin/no-setuid
ExecStart=!!/usr/bin/ambient
ExecStart=:/usr/bin/literal $NOT_EXPANDED
ExecStart=-+/usr/bin/both
ExecStart=:-!!/usr/bin/three
`,
			want: UnitFile{
				Files: []string{"/etc/systemd/system/prefixes.service"},
				ExecStart: []string{
					"-/usr/bin/may-fail", "@/usr/bin/daemon my-argv0 --flag", "+/usr/bin/privileged",
					"!/usr/bin/no-setuid", "!!/usr/bin/ambient", ":/usr/bin/literal $NOT_EXPANDED",
					"-+/usr/bin/both", ":-!!/usr/bin/three",
				},
			},
		},
		{
			name: "blanks around = and the value",
			out: "# /etc/systemd/system/spaced.service\n" +
				"  [Service]  \n" +
				"ExecStart   =   /usr/bin/spaced --a  b\t \n" +
				"User\t=\tcore\n",
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/spaced.service"},
				ExecStart: []string{"/usr/bin/spaced --a  b"},
				User:      "core",
			},
		},
		{
			name: "other Exec settings and other cases are not ExecStart",
			out: `# /usr/lib/systemd/system/sshd.service
[Unit]
Description=OpenSSH server daemon

[Service]
Type=notify
EnvironmentFile=-/etc/sysconfig/sshd
ExecStartPre=/usr/sbin/sshd-keygen
ExecStart=/usr/sbin/sshd -D $OPTIONS
ExecStartPost=/usr/bin/logger started
ExecReload=/bin/kill -HUP $MAINPID
ExecStop=/bin/kill $MAINPID
ExecStopPost=/usr/bin/logger stopped
execstart=/usr/bin/lowercase
ExecStart2=/usr/bin/other
Exec Start=/usr/bin/spaced
KillMode=process
`,
			want: UnitFile{
				Files:     []string{"/usr/lib/systemd/system/sshd.service"},
				ExecStart: []string{"/usr/sbin/sshd -D $OPTIONS"},
			},
		},
		{
			name: "ExecStart outside [Service] is ignored",
			out: `# /etc/systemd/system/sections.service
[Unit]
ExecStart=/usr/bin/in-unit
User=unit-user

[X-Custom]
ExecStart=/usr/bin/in-custom

[Service]
ExecStart=/usr/bin/in-service

[Install]
ExecStart=/usr/bin/in-install
User=install-user

# /etc/systemd/system/sections.service.d/10-nosection.conf
ExecStart=
ExecStart=/usr/bin/before-any-section
[Unit]
ExecStart=
`,
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/sections.service", "/etc/systemd/system/sections.service.d/10-nosection.conf"},
				ExecStart: []string{"/usr/bin/in-service"},
			},
		},
		{
			name: "already wrapped by the wrapper drop-in",
			out: `# /usr/lib/systemd/system/chronyd.service
[Service]
Type=forking
ExecStart=/usr/sbin/chronyd $OPTIONS

# /etc/systemd/system/chronyd.service.d/99-kubens-wrapper.conf
# Generated by oc-kubens wrap: runs chronyd.service inside the Kubernetes mount namespace.
[Unit]
After=kubens.service

[Service]
ExecStart=
ExecStart=/usr/bin/kubensenter /usr/sbin/chronyd $OPTIONS
`,
			want: UnitFile{
				Files:     []string{"/usr/lib/systemd/system/chronyd.service", "/etc/systemd/system/chronyd.service.d/99-kubens-wrapper.conf"},
				ExecStart: []string{"/usr/bin/kubensenter /usr/sbin/chronyd $OPTIONS"},
				WrappedBy: "/etc/systemd/system/chronyd.service.d/99-kubens-wrapper.conf",
			},
		},
		{
			name: "already wrapped by kubensenter in another drop-in",
			out: `# /usr/lib/systemd/system/ovs-vswitchd.service
[Service]
Type=forking
ExecStart=/usr/share/openvswitch/scripts/ovs-ctl --no-ovsdb-server start $OPTIONS

# /etc/systemd/system/ovs-vswitchd.service.d/10-ovs-vswitchd-restart.conf
[Service]
Restart=always

# /etc/systemd/system/ovs-vswitchd.service.d/50-kubens.conf
[Service]
ExecStart=
ExecStart=-kubensenter /usr/share/openvswitch/scripts/ovs-ctl --no-ovsdb-server start $OPTIONS
`,
			want: UnitFile{
				Files: []string{
					"/usr/lib/systemd/system/ovs-vswitchd.service",
					"/etc/systemd/system/ovs-vswitchd.service.d/10-ovs-vswitchd-restart.conf",
					"/etc/systemd/system/ovs-vswitchd.service.d/50-kubens.conf",
				},
				ExecStart: []string{"-kubensenter /usr/share/openvswitch/scripts/ovs-ctl --no-ovsdb-server start $OPTIONS"},
				WrappedBy: "/etc/systemd/system/ovs-vswitchd.service.d/50-kubens.conf",
			},
		},
		{
			name: "already wrapped by nsenter into /run/kubens/mnt",
			out: `# /etc/systemd/system/mounter.service
[Service]
ExecStart=/usr/bin/nsenter --mount=/run/kubens/mnt -- /usr/local/bin/mounter --watch
`,
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/mounter.service"},
				ExecStart: []string{"/usr/bin/nsenter --mount=/run/kubens/mnt -- /usr/local/bin/mounter --watch"},
				WrappedBy: "/etc/systemd/system/mounter.service",
			},
		},
		{
			name: "nsenter into another namespace is not wrapped",
			out: `# /etc/systemd/system/host-mounter.service
[Service]
ExecStart=/usr/bin/nsenter -m/proc/1/ns/mnt -- /usr/local/bin/mounter
`,
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/host-mounter.service"},
				ExecStart: []string{"/usr/bin/nsenter -m/proc/1/ns/mnt -- /usr/local/bin/mounter"},
			},
		},
		{
			name: "kubelet through kubenswrapper",
			out: `# /etc/systemd/system/kubelet.service
[Unit]
Description=Kubernetes Kubelet
Wants=rpc-statd.service crio.service

[Service]
Type=notify
ExecStartPre=/bin/mkdir --parents /etc/kubernetes/manifests
ExecStart=/usr/local/bin/kubenswrapper \
    /usr/bin/kubelet \
      --config=/etc/kubernetes/kubelet.conf \
      --node-ip=${KUBELET_NODE_IP} \
      $KUBELET_LOG_LEVEL

Restart=always
`,
			want: UnitFile{
				Files: []string{"/etc/systemd/system/kubelet.service"},
				ExecStart: []string{"/usr/local/bin/kubenswrapper      /usr/bin/kubelet        --config=/etc/kubernetes/kubelet.conf " +
					"       --node-ip=${KUBELET_NODE_IP}        $KUBELET_LOG_LEVEL"},
				WrappedBy: "/etc/systemd/system/kubelet.service",
			},
		},
		{
			name: "a reset with no new value leaves no ExecStart",
			out: `# /usr/lib/systemd/system/foo.service
[Service]
ExecStart=/usr/bin/foo
User=foo

# /etc/systemd/system/foo.service.d/override.conf
[Service]
ExecStart=
`,
			want: UnitFile{
				Files: []string{"/usr/lib/systemd/system/foo.service", "/etc/systemd/system/foo.service.d/override.conf"},
				User:  "foo",
			},
			err: ErrNoExecStart,
		},
		{
			name: "quotes, variables, specifiers and semicolons verbatim",
			out: `# /usr/lib/systemd/system/worker@.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "$HOME"; exec /usr/bin/worker --id=%i ${ARGS}' ; /bin/true
ExecStart="/opt/my tool/bin/run" --name="%N" $EXTRA a\;b "x;y"
`,
			want: UnitFile{
				Files: []string{"/usr/lib/systemd/system/worker@.service"},
				ExecStart: []string{
					`/bin/sh -c 'echo "$HOME"; exec /usr/bin/worker --id=%i ${ARGS}' ; /bin/true`,
					`"/opt/my tool/bin/run" --name="%N" $EXTRA a\;b "x;y"`,
				},
			},
		},
		{
			name: "comments that look like paths stay comments",
			out: `# /etc/systemd/system/commented.service
# /usr/bin/old-tool was replaced
[Service]
ExecStart=/usr/bin/new-tool
;ExecStart=
  # /etc/indented
# /with blank
# /etc/systemd/system/commented.service.d/fake.conf
ExecStart=/usr/bin/second
`,
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/commented.service"},
				ExecStart: []string{"/usr/bin/new-tool", "/usr/bin/second"},
			},
		},
		{
			name: "CRLF line ends",
			out: "# /etc/systemd/system/dos.service\r\n[Service]\r\nExecStart=/usr/bin/dos \\\r\n  --crlf\r\nUser=dos\r\n\r\n" +
				"# /etc/systemd/system/dos.service.d/a.conf\r\n[Service]\r\nUser=\r\n",
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/dos.service", "/etc/systemd/system/dos.service.d/a.conf"},
				ExecStart: []string{"/usr/bin/dos    --crlf"},
			},
		},
		{
			name: "escaped backslash does not continue, open continuation ends with the file",
			out: `# /etc/systemd/system/slashes.service
[Service]
Type=oneshot
ExecStart=/usr/bin/echo foo\\
User=slash
ExecStart=/usr/bin/echo three\\\
  joined
ExecStart=/usr/bin/last \
`,
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/slashes.service"},
				ExecStart: []string{`/usr/bin/echo foo\\`, `/usr/bin/echo three\\   joined`, "/usr/bin/last"},
				User:      "slash",
			},
		},
		{
			name: "a blank line ends a continuation",
			out:  "# /etc/systemd/system/blank.service\n[Service]\nExecStart=/usr/bin/a \\\n   \nUser=after\n",
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/blank.service"},
				ExecStart: []string{"/usr/bin/a"},
				User:      "after",
			},
		},
		{
			name: "a section header and a key that go on on the next line",
			out:  "# /etc/systemd/system/split.service\n[Unit]\n[Service]\\\n   \nExecStart=/usr/bin/first\nExecStart\\\n=/usr/bin/split\nUser\\\n# comment\n = split\n",
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/split.service"},
				ExecStart: []string{"/usr/bin/first", "/usr/bin/split"},
				User:      "split",
			},
		},
		{
			name: "a lone CR ends a line",
			out:  "# /etc/systemd/system/cr.service\n[Service]\rExecStart=/usr/bin/cr\rUser=cr\n",
			want: UnitFile{
				Files:     []string{"/etc/systemd/system/cr.service"},
				ExecStart: []string{"/usr/bin/cr"},
				User:      "cr",
			},
		},
		{
			name: "invalid section header",
			out:  "# /etc/systemd/system/bad.service\n[Service\nExecStart=/usr/bin/bad\n",
			err:  ErrBadUnitFile,
		},
		{
			name: "section header with a trailing comment",
			out:  "# /etc/systemd/system/bad.service\n[Service] # main\nExecStart=/usr/bin/bad\n",
			err:  ErrBadUnitFile,
		},
		{
			name: "a unit file without the header",
			out:  "[Service]\nExecStart=/usr/bin/foo\n",
			err:  ErrNotSystemctlCat,
		},
		{
			name: "an error message",
			out:  "No files found for foo.service.\n",
			err:  ErrNotSystemctlCat,
		},
		{
			name: "empty",
			out:  "",
			err:  ErrNotSystemctlCat,
		},
		{
			name: "masked",
			out:  "# /etc/systemd/system/masked.service\n",
			want: UnitFile{Files: []string{"/etc/systemd/system/masked.service"}},
			err:  ErrNoExecStart,
		},
	}
}

func TestParseSystemctlCat(t *testing.T) {
	cases := catCases()
	if len(cases) < 12 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSystemctlCat(tt.out)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestSplitLines(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"a\n\n", []string{"a", ""}},
		{"a\r\nb\rc\x00d\n", []string{"a", "b", "c", "d"}},
		{"a\r\r\nb", []string{"a", "", "b"}},
		{"\r", []string{""}},
	}
	for _, tt := range tests {
		if got := splitLines(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEndsEscaped(t *testing.T) {
	for in, want := range map[string]bool{
		``: false, `a`: false, `a\`: true, `a\\`: false, `a\\\`: true, `\`: true, `\\`: false, `a\ b`: false,
	} {
		if got := endsEscaped(in); got != want {
			t.Errorf("endsEscaped(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestRunsAsRoot(t *testing.T) {
	for user, want := range map[string]bool{"": true, "root": true, "0": true, "core": false, "1000": false, "nobody": false} {
		if got := (UnitFile{User: user}).RunsAsRoot(); got != want {
			t.Errorf("User %q: RunsAsRoot = %v, want %v", user, got, want)
		}
	}
}
