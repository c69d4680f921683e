"""Provider adapters: AI generation (base, local, openai_compatible) and payments.

AI providers share one interface (`services.providers.base.Provider`); use
`services.providers.base.provider_for(model)` to get the adapter for a registry row.
"""
