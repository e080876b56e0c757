"""The admin shard view at ``/admin/clusterkit/cluster/``: the cluster live, and its buttons.

Staff with ``clusterkit.view_cluster`` see the runners, a grid of every shard of each group
coloured by owner with its backlog, epoch and lease expiry, the singletons and where they
run, the cron schedules, and the failed messages and jobs. The page refreshes itself from
``state/`` (JSON) every ``REFRESH_MS``: it polls rather than subscribing to a stream,
because what it shows is a snapshot of the lease and message tables (they change on every
lease tick, in every runner), not events anyone publishes, and polling keeps it working
under WSGI and without a channel layer. Staff with ``clusterkit.operate_cluster`` get the
buttons: drain a runner (what ``clusterkit drain`` does), retry a failed message or job
(``jobs.engine.retry``); each is a CSRF-protected POST that redirects back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from . import dashboard
from .admin import ReadOnlyAdmin
from .models import Cluster

if TYPE_CHECKING:
    ClusterAdminBase = admin.ModelAdmin[Cluster]
else:
    ClusterAdminBase = admin.ModelAdmin

REFRESH_MS = 1000
VIEW, OPERATE = "clusterkit.view_cluster", "clusterkit.operate_cluster"


@admin.register(Cluster)
class ClusterAdmin(ReadOnlyAdmin, ClusterAdminBase):
    """The shard view in place of a change list; no rows are added, changed or deleted."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.has_perm(VIEW))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name="clusterkit_cluster_changelist"),
            path("state/", wrap(self.state_view), name="clusterkit_cluster_state"),
            path("drain/<int:runner_id>/", wrap(require_POST(self.drain_view)),
                 name="clusterkit_cluster_drain"),
            path("retry-message/<int:message_id>/", wrap(require_POST(self.retry_message_view)),
                 name="clusterkit_cluster_retry_message"),
            path("retry-job/<str:job_id>/", wrap(require_POST(self.retry_job_view)),
                 name="clusterkit_cluster_retry_job"),
        ]  # fmt: skip

    def _require(self, request: HttpRequest, perm: str) -> None:
        if not (request.user.is_active and request.user.is_staff and request.user.has_perm(perm)):
            raise PermissionDenied

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        self._require(request, VIEW)
        context = {
            **self.admin_site.each_context(request),
            "title": "Cluster",
            "opts": self.model._meta,
            "state": dashboard.snapshot(),
            "can_operate": request.user.has_perm(OPERATE),
            "refresh_ms": REFRESH_MS,
            "state_url": reverse(
                "admin:clusterkit_cluster_state", current_app=self.admin_site.name
            ),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/clusterkit/cluster.html", context)

    def state_view(self, request: HttpRequest) -> JsonResponse:
        self._require(request, VIEW)
        return JsonResponse(dashboard.snapshot())

    def _back(self, request: HttpRequest, text: str, level: int) -> HttpResponseRedirect:
        messages.add_message(request, level, text)
        return HttpResponseRedirect(
            reverse("admin:clusterkit_cluster_changelist", current_app=self.admin_site.name)
        )

    def drain_view(self, request: HttpRequest, runner_id: int) -> HttpResponse:
        self._require(request, OPERATE)
        if dashboard.drain(runner_id):
            return self._back(request, f"Runner #{runner_id} is draining; its shards move "
                              "shortly.", messages.SUCCESS)  # fmt: skip
        return self._back(request, f"No runner #{runner_id}.", messages.ERROR)

    def retry_message_view(self, request: HttpRequest, message_id: int) -> HttpResponse:
        self._require(request, OPERATE)
        new_id = dashboard.retry_message(message_id)
        if new_id is None:
            return self._back(request, f"Message #{message_id} is not a failed message.",
                              messages.ERROR)  # fmt: skip
        return self._back(request, f"Message #{message_id} sent again as #{new_id}.",
                          messages.SUCCESS)  # fmt: skip

    def retry_job_view(self, request: HttpRequest, job_id: str) -> HttpResponse:
        self._require(request, OPERATE)
        if dashboard.retry_job(job_id):
            return self._back(request, f"Job {job_id} queued again.", messages.SUCCESS)
        return self._back(request, f"Job {job_id} is not failed or cancelled.", messages.ERROR)
