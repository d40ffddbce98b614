package controller_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/webdriver"
)

// TestDashboard drives the dashboard in headless Chromium (Debian's,
// through ChromeDriver) on a three-host cluster with a CA: a wrong token
// is refused with the controller's message; the admin logs in and sees
// the three hosts; starts a live migration from the VM's Migrate dialog
// and watches its progress bar go from under 100 % to 100 % as the event
// stream reports it, with the per-pass chart drawn; previews a drain
// plan, runs it, and sees the VM's new host; then a member of another
// project logs in and sees only its project's VM and no admin action.
// Any console error fails the test, and every screenshot must have
// content. GODWIT_SCREENSHOTS names a directory to keep them in.
func TestDashboard(t *testing.T) {
	t.Parallel() // beside the OpenStack clients' tests: a browser and Python processes
	if testing.Short() {
		t.Skip("starts a browser")
	}
	if why := webdriver.Available(); why != "" {
		t.Skip(why)
	}
	tc := newTestClusterWith(t, clusterOptions{tls: true}, 4, 8192, 8192, 8192)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tc.importFakeKernel(t, "guest")
	adm := tc.client
	// web dirties 40 MB/s of a 256 MiB working set: plain pre-copy at the
	// dialog's 150 MB/s cap runs a few passes.
	for _, req := range []api.CreateVMRequest{
		{Name: "web", Image: "guest", Pool: api.PoolShared, Host: "host1", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 512}, Cmdline: "dirty_mb=256 dirty_rate_mb=40"},
		{Name: "db", Image: "guest", Pool: api.PoolShared, Host: "host1", Flavor: api.Flavor{VCPUs: 2, MemoryMiB: 256}},
		{Name: "b-vm", Project: "beta", Image: "guest", Pool: api.PoolShared, Host: "host3", Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 64}},
	} {
		if _, err := adm.CreateVM(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	member, err := adm.CreateToken(ctx, api.CreateTokenRequest{Name: "bob", Project: "beta", Role: api.RoleMember})
	if err != nil {
		t.Fatal(err)
	}

	dir := os.Getenv("GODWIT_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	p := webdriver.Open(t, ctx, dir, "dashboard", 1440, 1000)

	// A wrong token: the controller's 401 message is shown (its failed
	// request is the one console error expected).
	p.Do(p.S.Navigate(ctx, tc.url+"/"))
	p.Wait("the login form", `return !document.getElementById("login").hidden`)
	p.Type("#token", "gwt_0123456789ab_"+strings.Repeat("A", 43))
	p.Click("#login-button")
	p.Wait("the refusal", `return document.getElementById("login-error").textContent.length > 0`)
	if msg := p.Text("#login-error"); !strings.Contains(msg, "token") {
		t.Errorf("a wrong token shows %q; want the controller's message about the token", msg)
	}
	p.ConsoleErrors("a wrong token", "401")

	// The admin sees three hosts.
	p.Clear("#token")
	p.Type("#token", tc.adminToken)
	p.Click("#login-button")
	p.Wait("three hosts up", `return document.querySelectorAll("[data-host][data-state=up]").length === 3`)
	p.Wait("the live stream", `return document.getElementById("stream").classList.contains("live")`)
	p.Wait("the VMs", `return document.querySelector("tr[data-vm=web] td.host").textContent === "host1"`)
	p.Shot("hosts")
	p.ConsoleErrors("logging in", "")

	// A live migration from the dialog, to host2, capped at 150 MB/s.
	p.Click("tr[data-vm=web] [data-action=migrate]")
	p.Wait("the migrate dialog", `return document.getElementById("dialog").open`)
	p.Exec(`document.querySelector("#dialog select[name=to]").value = "host2"`)
	p.Exec(`document.querySelector("#dialog select[name=kind]").value = "live"`)
	p.Exec(`document.querySelector("#dialog select[name=policy]").value = "pre-copy"`)
	p.Type("#dialog input[name=bandwidth_mb_per_s]", "150")
	p.Click("#dialog-ok")
	p.Wait("the migration under way", `const m = document.querySelector("tr[data-migration][data-state=transferring] .meter");
		return m !== null && Number(m.dataset.percent) > 0 && Number(m.dataset.percent) < 100`)
	p.Wait("two passes in the chart", `return document.querySelectorAll("#detail .chart .bar-rem").length >= 3`)
	p.Shot("migration")
	p.Wait("the progress bar at 100 %", `const m = document.querySelector("tr[data-migration][data-state=completed] .meter");
		return m !== null && m.dataset.percent === "100"`)
	p.Wait("web on host2", `return document.querySelector("tr[data-vm=web] td.host").textContent === "host2"`)
	migs, err := adm.Migrations(ctx, "web")
	if err != nil || len(migs) != 1 || migs[0].Destination != "host2" || len(migs[0].Passes) < 2 {
		t.Fatalf("migrations after the dashboard's: %+v, %v; want one to host2 with its passes recorded", migs, err)
	}
	p.ConsoleErrors("the migration", "")

	// Drain host1 (db is there): the plan first, then the drain.
	p.Click("[data-host=host1] [data-action=drain]")
	p.Wait("the drain dialog", `return document.getElementById("dialog").open`)
	p.Click("#dialog-ok") // Preview plan
	p.Wait("the plan", `return document.querySelector("#dialog .plan tr[data-vm=db]") !== null`)
	if ok := p.Text("#dialog-ok"); ok != "Drain now" {
		t.Errorf("after the plan the dialog's button says %q, want Drain now", ok)
	}
	if in, err := adm.Intents(ctx); err != nil || len(in) != 0 {
		t.Errorf("the preview started something: %+v, %v", in, err)
	}
	p.Shot("drain-plan")
	p.Click("#dialog-ok") // Drain now
	p.Wait("the dialog closed", `return !document.getElementById("dialog").open`)
	p.Wait("the drain completed", `return document.querySelector("tr[data-intent][data-state=completed]") !== null`)
	p.Wait("db off host1", `const h = document.querySelector("tr[data-vm=db] td.host").textContent; return h === "host2" || h === "host3"`)
	p.Shot("drained")
	p.ConsoleErrors("the drain", "")

	// A member of beta: its VM only, no host, no admin action.
	p.Click("#logout")
	p.Wait("the login form", `return !document.getElementById("login").hidden`)
	p.Type("#token", member.Secret)
	p.Click("#login-button")
	p.Wait("beta's VM", `return document.getElementById("who").textContent.startsWith("bob") && document.querySelector("tr[data-vm=b-vm]") !== null`)
	var seen struct {
		VMs, Hosts, Migrate, Drain int
	}
	p.ExecOut(&seen, `return {VMs: document.querySelectorAll("#vms tr[data-vm]").length, Hosts: document.querySelectorAll("[data-host]").length,
		Migrate: document.querySelectorAll("[data-action=migrate]").length, Drain: document.querySelectorAll("[data-action=drain],[data-action=abort]").length}`)
	if seen.VMs != 1 || seen.Hosts != 0 || seen.Migrate != 0 || seen.Drain != 0 {
		t.Errorf("a member sees %+v; want its one VM and no host or admin action", seen)
	}
	if txt := p.Text("#hosts"); !strings.Contains(txt, "admins") {
		t.Errorf("a member's hosts panel says %q", txt)
	}
	p.Shot("member")
	p.ConsoleErrors("a member", "")
}
