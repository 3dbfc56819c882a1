"""The classic six-step creation wizard (issue 4): step forms, the step sequence, draft store.

Its drafts are already modelled (models.wizard.WizardDraft); the screens come with that issue.
"""
