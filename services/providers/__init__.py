"""Provider adapters: AI generation (base, factory, local, openai_compatible) and payments.

AI providers share one interface (`services.providers.base.Provider`, with its errors); use
`services.providers.factory.provider_for(model)` to get the adapter for a registry row and
`services.providers.factory.provider_run` to dispatch a run to it.
"""
