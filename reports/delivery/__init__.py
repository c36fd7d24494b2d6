"""Delivery channels: SMTP e-mail, generic JSON and DingTalk webhooks.

Shared by the weekly report and the hourly alert digest; each send returns a
:class:`~reports.delivery.results.ChannelResult` and never raises on a delivery problem.
"""
