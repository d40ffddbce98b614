#!/usr/bin/python3
"""Checks godwit's Nova API replies against Nova's published response
schemas, as Tempest holds them: Tempest's own service clients
(tempest.lib, Debian's tempest package) log in through the Keystone
subset and read servers (and their instance actions), flavors,
hypervisors, services, migrations, limits, quota sets and availability
zones at each microversion where a schema
changes up to the maximum godwit serves; each client validates every
reply with the schema of its microversion, and any mismatch fails.

Usage: nova-schemas.py AUTH_URL USER PASSWORD PROJECT CA_FILE
Prints one line per check; exits 1 on any failure.
"""
import sys
import traceback

from tempest.lib import auth
from tempest.lib.services.compute import (availability_zone_client, base_compute_client, flavors_client,
                                          hypervisor_client, limits_client, migrations_client, quotas_client,
                                          servers_client, services_client)

# Every microversion up to godwit's maximum at which a schema of these
# resources changes.
VERSIONS = [None, "2.3", "2.6", "2.8", "2.9", "2.11", "2.16", "2.19", "2.23", "2.26", "2.28", "2.36", "2.39", "2.45",
            "2.47", "2.48", "2.51", "2.53", "2.54", "2.55", "2.57", "2.58", "2.59", "2.60"]


def version(v):
    """A microversion as a comparable pair; None is 2.1."""
    return tuple(int(x) for x in (v or "2.1").split("."))


def main(auth_url, user, password, project, ca):
    creds = auth.KeystoneV3Credentials(username=user, password=password, project_name=project,
                                       user_domain_name="Default", project_domain_name="Default")
    ap = auth.KeystoneV3AuthProvider(creds, auth_url, ca_certs=ca)
    kw = dict(ca_certs=ca)
    servers = servers_client.ServersClient(ap, "compute", "RegionOne", **kw)
    flavors = flavors_client.FlavorsClient(ap, "compute", "RegionOne", **kw)
    hypervisors = hypervisor_client.HypervisorClient(ap, "compute", "RegionOne", **kw)
    services = services_client.ServicesClient(ap, "compute", "RegionOne", **kw)
    migrations = migrations_client.MigrationsClient(ap, "compute", "RegionOne", **kw)
    limits = limits_client.LimitsClient(ap, "compute", "RegionOne", **kw)
    zones = availability_zone_client.AvailabilityZoneClient(ap, "compute", "RegionOne", **kw)
    quotas = quotas_client.QuotasClient(ap, "compute", "RegionOne", **kw)

    failed = 0
    actions = {}  # request IDs of each server's actions

    def check(what, fn):
        nonlocal failed
        try:
            out = fn()
            print("ok", what)
            return out
        except Exception as e:  # the schema's mismatch, or the call's error
            failed += 1
            print("FAIL", what, "".join(traceback.format_exception_only(type(e), e)).strip())
            return None

    for v in VERSIONS:
        base_compute_client.COMPUTE_MICROVERSION = v
        at = "@" + (v or "2.1")
        body = check("list_servers(detail) " + at, lambda: servers.list_servers(detail=True))
        check("list_servers " + at, lambda: servers.list_servers())
        for s in (body or {}).get("servers", []):
            check("show_server %s %s" % (s["name"], at), lambda: servers.show_server(s["id"]))
            # Tempest checks every list of instance actions with 2.1's
            # schema, which lacks 2.58's updated_at: below 2.58 only.
            if version(v) < (2, 58):
                acts = check("list_instance_actions %s %s" % (s["name"], at),
                             lambda: servers.list_instance_actions(s["id"]))
                actions.setdefault(s["id"], [a["request_id"] for a in (acts or {}).get("instanceActions", [])])
            # Tempest's schema module of 2.45 and 2.46 lacks the action's.
            if hasattr(servers.get_schema(servers.schema_versions_info), "show_instance_action"):
                for req in actions.get(s["id"], [])[:1]:
                    check("show_instance_action %s %s" % (s["name"], at),
                          lambda: servers.show_instance_action(s["id"], req))
        fl = check("list_flavors(detail) " + at, lambda: flavors.list_flavors(detail=True))
        check("list_flavors " + at, lambda: flavors.list_flavors())
        for f in (fl or {}).get("flavors", [])[:1]:
            check("show_flavor " + at, lambda: flavors.show_flavor(f["id"]))
        hv = check("list_hypervisors(detail) " + at, lambda: hypervisors.list_hypervisors(detail=True))
        check("list_hypervisors " + at, lambda: hypervisors.list_hypervisors())
        for h in (hv or {}).get("hypervisors", [])[:1]:
            check("show_hypervisor " + at, lambda: hypervisors.show_hypervisor(h["id"]))
            check("show_hypervisor_uptime " + at, lambda: hypervisors.show_hypervisor_uptime(h["id"]))
        check("list_services " + at, lambda: services.list_services())
        check("list_migrations " + at, lambda: migrations.list_migrations())
        check("show_limits " + at, lambda: limits.show_limits())
        check("list_availability_zones " + at, lambda: zones.list_availability_zones())
        check("show_quota_set " + at, lambda: quotas.show_quota_set(project))
        check("show_quota_set(detail) " + at, lambda: quotas.show_quota_set(project, detail=True))
        check("show_default_quota_set " + at, lambda: quotas.show_default_quota_set(project))
        check("update_quota_set " + at, lambda: quotas.update_quota_set(project, cores=64, ram="65536"))
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
