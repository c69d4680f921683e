"""Analytics for customer admins and operators.

* `rollup`: the per-day roll-up of usage events and its watermark (a job);
* `queries`: scope and period, the page's report (roll-up + raw events after the watermark);
* `reconciliation`: each organization's UTC day against the ledger, provider and payments
  (a job), and the stored answers;
* `checklist`: "Why is this empty?" for the current view;
* `export`: the CSV of what is on screen;
* `platform`: the operators' platform view.
"""
