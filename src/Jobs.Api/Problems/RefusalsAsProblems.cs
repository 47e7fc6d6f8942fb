namespace Jobs.Api.Problems;

/// <summary>
/// Every refusal a handler or the service under it throws (<see cref="RequestRefusedException"/>) becomes its
/// problem+json here, once, for a whole route group: handlers state what they answer, not how refusals look.
/// </summary>
internal sealed class RefusalsAsProblems : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context);
        }
        catch (RequestRefusedException e)
        {
            return ApiProblems.From(e);
        }
    }
}

internal static class RefusalsAsProblemsExtensions
{
    public static RouteGroupBuilder WithRefusalsAsProblems(this RouteGroupBuilder group)
    {
        group.AddEndpointFilter<RefusalsAsProblems>();
        return group;
    }
}
