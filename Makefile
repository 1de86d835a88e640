# cloudshift.migrate — developer entry points. The two that matter:
#   make demo   bring the lab up and run the collection's demo playbook against it
#   make test   everything CI runs: sanity, units, integration + pytest on the lab, molecule, lint
SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
COLLECTIONS := $(ROOT)/.build/collections
LAB := python3 $(ROOT)/lab/labctl.py

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_PYTHON_INTERPRETER := $(VENV)/bin/python
export OS_CLIENT_CONFIG_FILE := $(ROOT)/.lab/clouds.yaml
export CLOUDSHIFT_LEDGER_DIR ?= $(ROOT)/.lab/ledger
export PATH := $(VENV)/bin:$(PATH)

.PHONY: help venv sync lab-install lab-up lab-down lab-status demo demo-image test sanity units integration \
        pytest molecule lint build bench-smoke changelog clean docs awx bench-stream bench-fleet bench-project bench-scan

help:
	@echo "make demo          bring the lab up, move two servers (volume-backed, ephemeral) from lab-source to lab-destination"
	@echo "make demo-image    bring the lab up, move a disk image from lab-source to lab-destination"
	@echo "make test          everything CI runs (the lab is started and stopped)"
	@echo "make lab-up | lab-down | lab-status | lab-install"
	@echo "make sanity | units | lint | build | molecule | integration | pytest   one stage of make test"
	@echo "make bench-stream  benchmark: a disk into Glance (manual way, curl, the module)"
	@echo "make bench-fleet   benchmark: 20 servers in one migrate_instance run vs one at a time"
	@echo "make bench-aws     benchmark: 50 EBS copies to another region vs the ideal and a one-by-one script"
	@echo "make bench-flip    benchmark: 20 database flips and reverts under writes vs task by task"
	@echo "make bench-project benchmark: three volumes into Glance and an archive, one read vs one after the other"
	@echo "make bench-scan    benchmark: a full scan of this machine, host_scan vs the manual way (no lab)"
	@echo "make demo SCENARIO=aws   move two EC2 instances between regions on the lab's moto"
	@echo "make demo SCENARIO=site  move the lab's site (databases, HAProxy, CDN stand-in, DNS): prepare, test, flip"
	@echo "make sync          mirror the tree into .build/collections for ansible-playbook/ansible-doc"
	@echo "make changelog     lint the changelog fragments"
	@echo "make docs          the documentation site (modules, roles, playbooks, runbooks) in .build/docs/html"
	@echo "make awx           rewrite awx/cloudshift-migrate.json (AWX/AAP objects for awx import) from the schema"

venv:
	@hack/bootstrap-venv

sync: venv
	@hack/sync-collection >/dev/null

lab-install: venv
	@$(LAB) install

lab-up: venv
	@$(LAB) up

lab-down:
	@$(LAB) down

lab-status:
	@$(LAB) status

# The main job: servers move between the lab's two clouds (a volume-backed web01 with a data
# volume, an ephemeral cache01); the report (the ledger as a table) ends the output.
# make demo SCENARIO=aws: two EC2 instances from us-east-1 to ap-southeast-2 on the lab's moto.
SCENARIO ?= instance
AWS_ENV = set -a && . .lab/aws.env && set +a
demo: sync lab-up
ifeq ($(SCENARIO),site)
	python3 lab/site_plan.py >/dev/null
	for phase in prepare test flip; do \
	  ansible-playbook cloudshift.migrate.migrate_site -e @.lab/site-plan.json --tags $$phase || exit 1; done
else ifeq ($(SCENARIO),aws)
	$(AWS_ENV) && curl -s -o /dev/null -X POST -d '{"snapshot_seconds": 2, "copy_seconds": 5}' \
	  http://127.0.0.1:14566/cloudshift-lab/config && \
	  ansible-playbook lab/playbooks/aws_fixtures.yml -e '{"fixture_aws_names": ["app01", "app02"]}' && \
	  ansible-playbook cloudshift.migrate.migrate_aws_region -e source_region=us-east-1 -e destination_region=ap-southeast-2 \
	  -e '{"instance_tags": {"role": "app"}}' -e create_network=true -e create_kms_key=true
else
	ansible-playbook lab/playbooks/instance_fixtures.yml
	ansible-playbook cloudshift.migrate.migrate_instance -e source=lab-source -e destination=lab-destination \
	  -e '{"instance": ["web01", "cache01"]}' -e copy_host_server=copy-host -e verify_read_back=true
endif

# The first demo: one disk image between the two clouds' Glance.
demo-image: sync lab-up
	ansible-playbook cloudshift.migrate.demo

test: venv
	@hack/test

# Single stages, for a developer's loop (the lab must be up for integration and pytest).
sanity units integration pytest molecule lint build bench-smoke: venv
	@STAGES=$@ hack/test

# Benchmarks (not part of make test): each prints ratios against a baseline run in the same process.
bench-stream: sync lab-up
	@hack/ensure-debian-packages time curl
	python3 bench/stream_to_glance.py

changelog: venv
	antsibull-changelog lint

docs:
	@hack/build-docs

awx:
	@hack/awx-assets

clean:
	rm -rf .build tests/output

bench-fleet: sync lab-up
	python3 bench/migrate_fleet.py

bench-aws: sync
	@$(LAB) up moto
	python3 bench/ebs_copy_fleet.py

bench-flip: sync
	@$(LAB) up site
	python3 bench/flip.py

bench-scan: sync
	python3 bench/host_scan.py

bench-project: sync lab-up
	python3 bench/project_export.py
