"""Plugins that let the lab's real Nova and Neutron run without a hypervisor or agents."""
