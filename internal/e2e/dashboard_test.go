package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/webdriver"
)

// TestDashboardQEMU is the dashboard during real moves: a cluster with a
// CA of three hosts running a TCG test guest, driven in headless
// Chromium. A live migration started from the VM's Migrate dialog is
// caught mid-transfer, then completes with the guest's heartbeat
// unbroken; a drain of the VM's new host is previewed, run and caught
// mid-move, and the VM ends elsewhere, still beating. No console error
// is allowed. The screenshots are the ones in docs/dashboard.md: make
// screenshots keeps them (GODWIT_SCREENSHOTS).
func TestDashboardQEMU(t *testing.T) {
	// The page itself is tested in every run (TestDashboard, fake
	// driver), and the moves on QEMU by the other e2e tests: this run
	// makes docs/img's screenshots, and keeps 25 s out of make test.
	if os.Getenv("GODWIT_SCREENSHOTS") == "" {
		t.Skip("makes the dashboard's screenshots on real QEMU: run it with make screenshots (GODWIT_SCREENSHOTS=DIR); TestDashboard tests the page in every run")
	}
	requireQEMU(t)
	if why := webdriver.Available(); why != "" {
		t.Skip(why)
	}
	c := newCluster(t, clusterOpts{hosts: 3, driver: "qemu", tls: true})
	c.importGuest()
	if _, err := c.client.CreateVM(bg, api.CreateVMRequest{Name: "web", Image: "testguest", Pool: api.PoolShared, Host: "host1",
		Flavor: api.Flavor{VCPUs: 1, MemoryMiB: 192, DiskMiB: 64}, Cmdline: "dirty_mb=32 dirty_rate_mb=8"}); err != nil {
		t.Fatal(err)
	}
	before := c.waitHeartbeat("web", 3, 90*time.Second)

	ctx, cancel := context.WithTimeout(bg, 5*time.Minute)
	defer cancel()
	p := webdriver.Open(t, ctx, os.Getenv("GODWIT_SCREENSHOTS"), "dashboard-qemu", 1440, 900)
	p.Timeout = 2 * time.Minute
	p.Do(p.S.Navigate(ctx, c.URL()+"/ui/"))
	p.Wait("the login form", `return !document.getElementById("login").hidden`)
	p.Type("#token", c.Token())
	p.Click("#login-button")
	p.Wait("three hosts up", `return document.querySelectorAll("[data-host][data-state=up]").length === 3`)

	// A live migration to host2 at 40 MB/s (TCG guests are moved capped;
	// docs/testing.md), plain pre-copy so that passes show.
	p.Click("tr[data-vm=web] [data-action=migrate]")
	p.Wait("the migrate dialog", `return document.getElementById("dialog").open`)
	p.Exec(`document.querySelector("#dialog select[name=to]").value = "host2"`)
	p.Exec(`document.querySelector("#dialog select[name=kind]").value = "live"`)
	p.Exec(`document.querySelector("#dialog select[name=policy]").value = "pre-copy"`)
	p.Type("#dialog input[name=bandwidth_mb_per_s]", "40")
	p.Click("#dialog-ok")
	p.Wait("the transfer past 30 %", `const m = document.querySelector("tr[data-migration][data-state=transferring] .meter");
		return m !== null && Number(m.dataset.percent) >= 30`)
	p.Shot("migration")
	p.Wait("the migration completed", `const m = document.querySelector("tr[data-migration][data-state=completed] .meter");
		return m !== null && m.dataset.percent === "100" && document.querySelector("tr[data-vm=web] td.host").textContent === "host2"`)
	p.Shot("migrated")
	first := c.healthy("web", before.Counter).First
	p.ConsoleErrors("the migration", "")

	// Drain host2: the plan, then the drain, caught while it moves.
	p.Click("[data-host=host2] [data-action=drain]")
	p.Wait("the drain dialog", `return document.getElementById("dialog").open`)
	p.Type("#dialog input[name=bandwidth_mb_per_s]", "40")
	p.Click("#dialog-ok")
	p.Wait("the plan", `return document.querySelector("#dialog .plan tr[data-vm=web]") !== null`)
	p.Shot("drain-plan")
	p.Click("#dialog-ok")
	p.Wait("the drain moving web", `const m = document.querySelector("tr[data-migration][data-state=transferring] .meter");
		return document.querySelector("tr[data-intent][data-state=running]") !== null && m !== null && Number(m.dataset.percent) >= 20`)
	p.Exec(`document.querySelector("tr[data-intent][data-state=running]").click()`)
	p.Wait("the drain's operations", `return document.querySelector("#detail .plan tr[data-vm=web]") !== null`)
	p.Shot("drain")
	p.Wait("the drain completed", `return document.querySelector("tr[data-intent][data-state=completed]") !== null &&
		["host1", "host3"].includes(document.querySelector("tr[data-vm=web] td.host").textContent)`)
	p.Shot("drained")
	c.healthy("web", first.Counter)
	p.ConsoleErrors("the drain", "")
	if err := c.client.DeleteVM(bg, "web"); err != nil {
		t.Fatal(err)
	}
}
