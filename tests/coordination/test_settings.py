"""Tests of ledger settings and their mapping from the fleet spec to pysyncobj."""

from __future__ import annotations

import pytest

from mapl_robotics.coordination import LedgerSettings
from mapl_robotics.errors import LedgerConfigError
from mapl_robotics.spec import ConsensusSpec


def test_defaults_map_to_tuned_syncobj_conf(tmp_path):
    settings = LedgerSettings(self_address='127.0.0.1:47100', peers=('127.0.0.1:47101',),
                              journal_dir=tmp_path)
    conf = settings.to_syncobj_conf()
    conf.validate()
    assert conf.appendEntriesUseBatch is False
    assert conf.raftMinTimeout == 0.15
    assert conf.raftMaxTimeout == 0.3
    assert conf.appendEntriesPeriod == 0.03
    assert conf.journalFile == str(tmp_path / 'raft.journal')
    assert settings.client_address == '127.0.0.1:48100'


def test_spec_defaults_are_ledger_defaults(tmp_path):
    settings = LedgerSettings.from_spec(ConsensusSpec(), self_address='127.0.0.1:47100',
                                        peers=(), journal_dir=tmp_path)
    assert settings.append_entries_period_s == 0.03
    assert settings.election_timeout_min_s == 0.15
    assert settings.election_timeout_max_s == 0.3
    assert settings.tick_s == 0.005
    settings.to_syncobj_conf().validate()


def test_spec_timing_applied(tmp_path):
    spec = ConsensusSpec(append_entries_period_s=0.05, election_timeout_min_s=0.2,
                         election_timeout_max_s=0.4)
    settings = LedgerSettings.from_spec(spec, self_address='127.0.0.1:47100', peers=(),
                                        journal_dir=tmp_path)
    assert settings.to_syncobj_conf().raftMaxTimeout == 0.4
    assert settings.append_entries_period_s == 0.05
    assert settings.election_timeout_min_s == 0.2


def test_spec_tick_applied(tmp_path):
    settings = LedgerSettings.from_spec(ConsensusSpec(tick_s=0.01), self_address='127.0.0.1:47100',
                                        peers=(), journal_dir=tmp_path)
    assert settings.tick_s == 0.01
    assert settings.to_syncobj_conf().autoTickPeriod == 0.01


@pytest.mark.parametrize('changes, word', [
    ({'append_entries_period_s': 0.05}, 'three'),
    ({'election_timeout_max_s': 0.1}, 'less than'),
    ({'self_address': 'localhost'}, 'host:port'),
    ({'tick_s': 0.5}, 'tick_s'),
])
def test_invalid_settings_raise(tmp_path, changes, word):
    arguments = {'self_address': '127.0.0.1:47100', 'peers': (), 'journal_dir': tmp_path,
                 **changes}
    with pytest.raises(LedgerConfigError, match=word):
        LedgerSettings(**arguments)
