"""The CNN ensemble of the series classifier: budget plan, contrastive pretraining, fine-tuning.

1. **Plan** — one pretraining and one fine-tuning step are timed on this machine
   (:func:`~pimc_core.estimators.trainer.time_steps`), with one inference pass over the series
   to predict; the epochs of each phase and the number of members follow so that the whole
   fit stays within its deadline.
2. **Pretraining** (PIMC, optional, both branches) — symmetric InfoNCE
   (:class:`~pimc_core.models.contrastive.SymmetricInfoNCE`) between the RP embedding of one
   augmented view and the series embedding of another view of the same pixel, on all training
   *and* unlabelled series.
3. **Fine-tuning** — cross-entropy with label smoothing (and optional mixup), AdamW, one-cycle
   schedule, light augmentation, modality dropout (OmniSat-style: a whole branch zeroed for some
   samples); ``ensemble`` members with different seeds while the budget allows. After member
   1's first epoch the plan is corrected with the measured speed. With a random-kernel member,
   member ``i`` trains without fold ``i`` and predicts it (out-of-fold evidence for the mixture).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pimc_core.estimators.augment import augment, contrastive_views
from pimc_core.estimators.series_net import PixelSeriesNet
from pimc_core.estimators.trainer import (
    MIN_FINETUNE_S,
    Runtime,
    recalibrate_bn,
    round_epochs,
    run_epochs,
    time_inference,
    time_steps,
)
from pimc_core.models.contrastive import SymmetricInfoNCE
from pimc_core.models.heads import ClassifierHead, ProjectionHead

__all__ = ["CnnEnsemble"]


@dataclass
class _Contrastive:
    """What contrastive pretraining trains: projection heads, the loss, one step, its parameters."""

    heads: nn.ModuleDict
    loss_fn: SymmetricInfoNCE
    step: Callable[[torch.Tensor, torch.Generator], torch.Tensor]
    params: list[nn.Parameter]
    batch_size: int


@dataclass
class _Plan:
    """What the budget allows: pretraining epochs (0: none) and seconds, members, epochs each,
    and the seconds of one member's inference pass over the series to predict."""

    base: PixelSeriesNet
    pretraining: _Contrastive | None
    pretrain_epochs: int
    pretrain_seconds: float
    members: int
    epochs: int
    inf_member: float


class CnnEnsemble:
    """Mixin of :class:`~pimc_core.estimators.series_classifier.SeriesClassifier`: trains the CNN
    members. Uses the classifier's ``config_``, ``device_`` and ``_message``; sets ``members_``."""

    def _new_net(self, n_channels: int, n_classes: int, seed: int) -> PixelSeriesNet:
        torch.manual_seed(seed)
        return PixelSeriesNet(n_channels, n_classes, self.config_).to(self.device_)

    def _keep_mask(self, n: int, n_branches: int, gen: torch.Generator) -> torch.Tensor | None:
        """``(n, n_branches)`` 0/1 modality-dropout mask (``None`` when off or one branch)."""
        p = self.config_.modality_dropout
        if p <= 0 or n_branches < 2:
            return None
        drop = torch.rand(n, generator=gen) < p
        which = torch.randint(0, n_branches, (n,), generator=gen)
        keep = torch.ones(n, n_branches)
        keep[drop, which[drop]] = 0.0
        return keep.to(self.device_)

    def _pretrain_step_fn(self, rt: Runtime, net: PixelSeriesNet, heads: nn.ModuleDict, loss_fn: SymmetricInfoNCE) -> Callable:
        def step(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            va, vb = contrastive_views(xb, gen)
            with rt.autocast():
                za = heads["rp"](net.embed(va, "rp"))
                zb = heads["series"](net.embed(vb, "series"))
            return loss_fn(za.float(), zb.float())

        return step

    def _finetune_loss(self, rt: Runtime, net: PixelSeriesNet, xb: torch.Tensor, yb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Loss of a batch ``xb (B, C, T)`` with class indices ``yb (B,)``: augmented, modality
        dropout, label smoothing, mixup when ``mixup > 0``."""
        cfg = self.config_
        xb = augment(xb, cfg.augment, gen)
        keep = self._keep_mask(xb.shape[0], len(net.branches), gen)
        with rt.autocast():
            if cfg.mixup > 0:
                lam = float(np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen))).beta(cfg.mixup, cfg.mixup))
                perm = torch.randperm(xb.shape[0], generator=gen).to(self.device_)
                logits = net(lam * xb + (1 - lam) * xb[perm], keep)
                loss = lam * F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing) + (1 - lam) * F.cross_entropy(
                    logits.float(), yb[perm], label_smoothing=cfg.label_smoothing
                )
            else:
                logits = net(xb, keep)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
        return loss

    @torch.no_grad()
    def _logits(self, net: PixelSeriesNet, Z: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
        """Eval-mode logits ``(N, K)`` float64 of one member on standardised series ``(N, C, T)``."""
        net.eval()
        out = []
        for s in range(0, Z.shape[0], batch_size):
            with self._runtime().autocast():
                out.append(net(Z[s : s + batch_size]).float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    # -- phases -----------------------------------------------------------------------------

    def _plan(self, rt: Runtime, Z: torch.Tensor, Zall: torch.Tensor, Yt: torch.Tensor, k: int, bs: int, n_pred: int,
              deadline_total: float, np_rng: np.random.Generator, hist: dict[str, Any]) -> _Plan:
        """Time one pretraining and one fine-tuning step; choose epochs and members.

        Args:
            Z: ``(n, C, T)`` standardised training series; ``Zall`` ``(n + m, C, T)`` with the
                unlabelled ones; ``Yt`` ``(n,)`` class indices.
        """
        cfg = self.config_
        n, c, t = Z.shape
        base = self._new_net(c, k, cfg.seed)
        do_pretrain = cfg.pretrain and len(base.branches) == 2 and cfg.pretrain_max_epochs > 0 and cfg.pretrain_share > 0
        pbs = min(cfg.pretrain_batch_size, max(2, Zall.shape[0]))
        pre = None
        if do_pretrain:
            heads = nn.ModuleDict({b: ProjectionHead(cfg.embed_dim, cfg.proj_dim) for b in ("rp", "series")}).to(self.device_)
            loss_fn = SymmetricInfoNCE(cfg.temperature).to(self.device_)
            pstep = self._pretrain_step_fn(rt, base, heads, loss_fn)
            pparams = list(base.encoders.parameters()) + list(heads.parameters()) + list(loss_fn.parameters())
            idx0 = torch.from_numpy(np_rng.choice(Zall.shape[0], pbs, replace=Zall.shape[0] < pbs))
            tgen = torch.Generator().manual_seed(cfg.seed + 999)
            sec_p = time_steps(rt, lambda: pstep(Zall[idx0.to(self.device_)], tgen), pparams, [base, heads, loss_fn])
            base.train()
            pre = _Contrastive(heads, loss_fn, pstep, pparams, pbs)
        fparams = list(base.parameters())
        idx1 = np_rng.choice(n, bs, replace=n < bs)
        tgen = torch.Generator().manual_seed(cfg.seed + 998)
        sec_f = time_steps(rt, lambda: self._finetune_loss(rt, base, Z[idx1], Yt[idx1], tgen), fparams, [base])
        torch.manual_seed(cfg.seed)
        # inference cost: forward only is ~1/3 of a training step; one pass per member
        remaining = max(1.0, deadline_total - time.perf_counter()) * 0.95
        sec_ft_epoch = sec_f * max(1, n // bs)
        pt_epochs, sec_pt_epoch = 0, 0.0
        if pre is not None:
            sec_pt_epoch = sec_p * max(1, Zall.shape[0] // pbs)
            pt_epochs = round_epochs(min(cfg.pretrain_max_epochs, remaining * cfg.pretrain_share / max(sec_pt_epoch, 1e-9)))
            if pt_epochs * sec_pt_epoch > remaining * cfg.pretrain_share:
                pt_epochs = 0
            if pt_epochs < 1:
                pre, pt_epochs = None, 0
                rt.message("[plan] budget too short for contrastive pretraining; skipped")
        pt_time = pt_epochs * sec_pt_epoch
        ft_budget = remaining - pt_time
        # one inference pass of a member over the series to predict, measured on one batch
        inf_member = n_pred * time_inference(rt, base, Zall[: min(256, Zall.shape[0])])
        if cfg.epochs is not None:
            ft_epochs = cfg.epochs
            members = cfg.ensemble
        else:
            # each member costs its epochs plus one inference pass over the series to predict
            per_member_min = cfg.min_epochs * sec_ft_epoch + inf_member
            members = int(max(1, min(cfg.ensemble, 0.9 * ft_budget // max(per_member_min, 1e-9))))
            per_member = 0.9 * ft_budget / members - inf_member
            # never less than what fits in a few seconds (tiny data on a slow or busy machine)
            per_member = max(per_member, MIN_FINETUNE_S)
            ft_epochs = round_epochs(min(cfg.max_epochs, per_member / max(sec_ft_epoch, 1e-9)))
        hist.update(
            plan_seconds_per_pretrain_epoch=round(sec_pt_epoch, 3) if pre is not None else None,
            plan_seconds_per_finetune_epoch=round(sec_ft_epoch, 3),
            pretrain_epochs=pt_epochs,
            finetune_epochs=ft_epochs,
            members=members,
        )
        rt.message(
            f"[plan] {n} train series × {t} steps, {k} classes, {Zall.shape[0] - n} unlabelled; "
            f"pretrain {pt_epochs} ep (~{pt_time:.0f}s), fine-tune {members} member(s) × {ft_epochs} ep "
            f"(~{members * ft_epochs * sec_ft_epoch:.0f}s) on {self.device_}"
        )
        return _Plan(base, pre, pt_epochs, pt_time, members, ft_epochs, inf_member)

    def _pretrain(self, rt: Runtime, plan: _Plan, Zall: torch.Tensor, gen: torch.Generator, hist: dict[str, Any]) -> None:
        """PIMC contrastive pretraining of ``plan.base``'s encoders on ``Zall (n + m, C, T)``."""
        cfg, pre = self.config_, plan.pretraining
        assert pre is not None
        t0 = time.perf_counter()
        losses = run_epochs(
            rt,
            pre.params,
            [plan.base, pre.heads],
            lambda idx, g: pre.step(Zall[torch.from_numpy(idx).to(self.device_)], g),
            Zall.shape[0],
            pre.batch_size,
            plan.pretrain_epochs,
            cfg.lr,
            plan.pretrain_seconds * 1.3 + 2.0,
            gen,
            "pretrain",
            cfg.weight_decay,
        )
        hist["pretrain_loss"] = [round(v, 4) for v in losses]
        hist["pretrain_seconds"] = round(time.perf_counter() - t0, 1)
        hist["temperature"] = round(pre.loss_fn.temperature, 4)

    def _finetune(self, rt: Runtime, plan: _Plan, Z: torch.Tensor, Yt: torch.Tensor, k: int, bs: int,
                  folds: np.ndarray | None, deadline_total: float, hist: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Fine-tune the members (supervised) into ``members_``.

        Args:
            folds: ``(n,)`` fold of each training series, or ``None``: member ``i`` then trains
                on all series; otherwise without fold ``i mod rk_folds``, and predicts it.

        Returns:
            ``(oof_logits (n, K), has_oof (n,))``: the out-of-fold logits and the rows that have
            them (all zero / False without folds).
        """
        cfg = self.config_
        n, c, _ = Z.shape
        oof_logits = np.zeros((n, k), dtype=np.float64)
        has_oof = np.zeros(n, dtype=bool)
        base = plan.base
        pretrained = plan.pretraining is not None
        self.members_ = []
        hist["finetune_loss"] = []
        t_ft = time.perf_counter()
        pretrained_state = copy.deepcopy(base.state_dict()) if pretrained else None
        state = {"members": plan.members, "epochs": cfg.max_epochs if cfg.epochs is None else plan.epochs,
                 "inf_member": plan.inf_member, "deadline_fit": deadline_total - plan.members * plan.inf_member}
        time_driven = cfg.epochs is None

        def replan_first(epoch_s: float) -> tuple[int, float]:
            """After member 1's first epoch: re-plan members / epochs with the measured speed."""
            if not time_driven:
                return state["epochs"], max(state["deadline_fit"] - time.perf_counter() + epoch_s, MIN_FINETUNE_S) / state["members"]
            inf_m = state["inf_member"]
            budget_left = deadline_total - time.perf_counter() + epoch_s  # this member's first epoch included
            m = int(max(1, min(cfg.ensemble, 0.9 * budget_left // max(cfg.min_epochs * epoch_s + inf_m, 1e-9))))
            per = max(0.9 * budget_left / m - inf_m, MIN_FINETUNE_S)
            e = round_epochs(min(cfg.max_epochs, per / max(epoch_s, 1e-9)))
            if m != state["members"]:
                rt.message(f"[plan] measured {epoch_s:.1f}s per epoch: {m} member(s) of ~{e} epochs")
            state.update(members=m, epochs=cfg.max_epochs, inf_member=inf_m, deadline_fit=deadline_total - m * inf_m)
            hist.update(plan_seconds_per_finetune_epoch=round(epoch_s, 3), finetune_epochs_planned=e, members_planned=m)
            return cfg.max_epochs, max(state["deadline_fit"] - time.perf_counter() + epoch_s, MIN_FINETUNE_S) / m

        mi = 0
        while mi < state["members"]:
            members, ft_epochs, deadline_fit = state["members"], state["epochs"], state["deadline_fit"]
            net = base
            if mi:
                net = self._new_net(c, k, cfg.seed + 1000 * mi)
                if pretrained:
                    net.load_state_dict(pretrained_state)
            if pretrained:
                torch.manual_seed(cfg.seed + 1000 * mi)
                net.classifier = ClassifierHead(cfg.embed_dim * len(net.branches), k, 0, cfg.dropout).to(self.device_)
            mgen = torch.Generator().manual_seed(cfg.seed + 7919 * (mi + 1))
            left = deadline_fit - time.perf_counter()
            share = max(left / (members - mi), MIN_FINETUNE_S)
            Zm, Ym, held = Z, Yt, None
            if folds is not None:
                fold = mi % int(cfg.rk_folds)
                held = np.flatnonzero(folds == fold) if mi < int(cfg.rk_folds) else None
                rows = torch.from_numpy(np.flatnonzero(folds != fold)).to(self.device_)
                Zm, Ym = Z[rows], Yt[rows]
            losses = run_epochs(
                rt,
                list(net.parameters()),
                [net],
                lambda idx, g, net=net, Zm=Zm, Ym=Ym: self._finetune_loss(
                    rt, net, Zm[torch.from_numpy(idx).to(self.device_)], Ym[torch.from_numpy(idx).to(self.device_)], g),
                Zm.shape[0],
                bs,
                ft_epochs,
                cfg.lr,
                share,
                mgen,
                f"fine-tune {mi + 1}/{members}",
                cfg.weight_decay,
                replan_first if mi == 0 else None,
                time_driven,
            )
            hist.setdefault("finetune_epochs_done", []).append(len(losses))
            recalibrate_bn(rt, net, Zm, cfg.seed)
            net.eval()
            self.members_.append(net)
            if held is not None and len(held):
                oof_logits[held] = self._logits(net, Z[torch.from_numpy(held).to(self.device_)])
                has_oof[held] = True
            hist["finetune_loss"].append([round(v, 4) for v in losses[-3:]])
            mi += 1
            if time.perf_counter() > state["deadline_fit"] - 1.0 and mi < state["members"]:
                rt.message(f"[fit] budget reached: {mi} of {state['members']} members trained")
                break
        hist["finetune_seconds"] = round(time.perf_counter() - t_ft, 1)
        return oof_logits, has_oof
